//! The harness of the transport's integration tests: an in-memory engine
//! behind `ws_route` on 127.0.0.1:0, and a tokio-tungstenite client.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use chat_core::engine::{Engine, Limits};
use chat_transport_ws::{WsConfig, ws_route};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long any single wait may take before the test fails as hung. A guard
/// against hangs, not a speed check.
pub const HANG: Duration = Duration::from_secs(15);

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// The engine and the axum app serving its `ws_route`, in this process.
pub struct Server {
    pub addr: SocketAddr,
    pub engine: Engine,
    task: JoinHandle<()>,
}

/// A signed-up user.
pub struct User {
    pub id: String,
    pub token: String,
}

impl Server {
    /// Starts an engine with a 4-frame outbound queue and no rate limit,
    /// served with `config`. `send_buffer` sets SO_SNDBUF on the listener,
    /// which Linux hands on to every accepted socket: it keeps the kernel
    /// from absorbing megabytes of what a slow client does not read.
    pub async fn start(config: WsConfig, send_buffer: Option<u32>) -> Self {
        let engine = Engine::builder()
            .insecure_fast_password_hashing()
            .limits(Limits {
                outbound_queue: 4,
                user_budget: None,
                addr_budget: None,
                ..Limits::default()
            })
            .build()
            .await
            .expect("engine builds");
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        if let Some(bytes) = send_buffer {
            socket
                .set_send_buffer_size(bytes)
                .expect("SO_SNDBUF on the listener");
        }
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind 127.0.0.1:0");
        let listener = socket.listen(128).expect("listen");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().route("/ws", ws_route(engine.clone(), config));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("server runs");
        });
        Self { addr, engine, task }
    }

    pub async fn signup(&self, name: &str) -> User {
        let ok = self
            .engine
            .signup(name, "a password")
            .await
            .expect("signup");
        User {
            id: ok.user_id.to_string(),
            token: ok.token,
        }
    }

    /// A WebSocket for `token`, nothing read yet. `recv_buffer` sets the
    /// client socket's SO_RCVBUF before it connects (so it also bounds the
    /// TCP window the server may fill).
    pub async fn connect(&self, token: &str, recv_buffer: Option<u32>) -> Ws {
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        if let Some(bytes) = recv_buffer {
            socket
                .set_recv_buffer_size(bytes)
                .expect("SO_RCVBUF on the client");
        }
        let stream = socket.connect(self.addr).await.expect("TCP connects");
        let mut request = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("WebSocket handshake");
        ws
    }

    /// Waits (bounded by [`HANG`]) until the engine has `n` open sessions.
    pub async fn wait_for_connections(&self, n: usize) {
        let waited = tokio::time::timeout(HANG, async {
            while self.engine.connection_count() != n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the engine still has {} sessions, expected {n}",
            self.engine.connection_count()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The next message that is not a ping or pong, or `None` at the end of the
/// stream (a read error counts as the end).
pub async fn next_message(ws: &mut Ws) -> Option<Message> {
    loop {
        let next = tokio::time::timeout(HANG, ws.next())
            .await
            .expect("a frame within the hang guard");
        match next {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return Some(message),
            Some(Err(_)) | None => return None,
        }
    }
}

/// The next JSON text frame.
pub async fn next_frame(ws: &mut Ws) -> Value {
    match next_message(ws).await {
        Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("a JSON frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Reads until a frame of type `ty` and returns it with the frames before it.
pub async fn until(ws: &mut Ws, ty: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let frame = next_frame(ws).await;
        if frame["type"] == ty {
            return (frame, before);
        }
        before.push(frame);
    }
}

pub async fn send(ws: &mut Ws, frame: Value) {
    tokio::time::timeout(HANG, ws.send(Message::text(frame.to_string())))
        .await
        .expect("a send within the hang guard")
        .expect("send a frame");
}

/// A message id (a decimal string) as a number, for ordering.
pub fn id_of(message: &Value) -> u64 {
    message["message_id"]
        .as_str()
        .expect("message_id is a string")
        .parse()
        .expect("message_id is decimal")
}
