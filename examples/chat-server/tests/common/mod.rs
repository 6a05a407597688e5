//! The e2e harness: a server started in-process on 127.0.0.1:0 for a given
//! store URL and retention, an HTTP client, and a WebSocket client.
//!
//! Other stores reuse the scenarios with `chat_server_e2e!(name, url, retention)`.

#![allow(dead_code, unreachable_pub)]

pub mod restart;
pub mod scenarios;

use std::net::SocketAddr;
use std::time::Duration;

use chat_core::Retention;
use chat_server::{Bound, Config};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait may take before the test fails as hung.
pub const HANG: Duration = Duration::from_secs(15);

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub retention: Retention,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A signed-up user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

impl TestServer {
    /// A server on `store` (`memory`, `postgres://…`, `cassandra://…`).
    pub async fn start(store: &str, retention: Retention) -> Self {
        Self::start_with(Config {
            store: store.to_owned(),
            retention,
            ..Self::config()
        })
        .await
    }

    /// The configuration tests start from: port 0, fast hashing, a fixed secret.
    pub fn config() -> Config {
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            insecure_fast_hashing: true,
            jwt_secret: Some("the e2e test secret of 32+ bytes".into()),
            ..Config::default()
        }
    }

    pub async fn start_with(config: Config) -> Self {
        let bound = Bound::bind(&config).await.expect("server starts");
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bound
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            addr,
            retention: config.retention,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(HANG, task)
                .await
                .expect("server stops")
                .expect("server task ends well");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Any HTTP call; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("HTTP call");
        let status = res.status().as_u16();
        let text = res.text().await.expect("HTTP body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path}: body is not JSON: {text:?}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn signup(&self, name: &str) -> User {
        let (status, body) = self
            .post(
                "/api/signup",
                None,
                json!({"username": name, "password": "password-".to_owned() + name}),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        User {
            id: body["user_id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn group(&self, owner: &User, members: &[&User]) -> String {
        let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
        let (status, body) = self
            .post(
                "/api/groups",
                Some(&owner.token),
                json!({"name": "team", "members": ids}),
            )
            .await;
        assert_eq!(status, 201, "create group: {body}");
        body["conversation_id"].as_str().unwrap().to_owned()
    }

    /// A WebSocket for `user`, after the automatic sync (its messages are returned).
    pub async fn ws(&self, user: &User) -> (Ws, Vec<Value>) {
        let mut ws = self.ws_raw(&user.token).await;
        let mut synced = Vec::new();
        loop {
            let frame = ws.next().await;
            match frame["type"].as_str() {
                Some("synced") => break,
                Some("message") => synced.push(frame["message"].clone()),
                _ => panic!("unexpected frame during the first sync: {frame}"),
            }
        }
        (ws, synced)
    }

    /// A WebSocket with the token in the Authorization header, nothing read yet.
    pub async fn ws_raw(&self, token: &str) -> Ws {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("WebSocket connects");
        Ws { socket }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A WebSocket client speaking JSON frames.
pub struct Ws {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("send a frame");
    }

    /// The next message of the socket (text, close, …).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(HANG, self.socket.next())
                .await
                .expect("a frame within the hang guard");
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                Some(Err(e)) => {
                    eprintln!("WebSocket read error: {e}");
                    return None;
                }
                None => return None,
            }
        }
    }

    /// The next JSON text frame.
    pub async fn next(&mut self) -> Value {
        match self.next_message().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).expect("a JSON frame"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads until a frame of type `ty`, and returns it; frames of other
    /// types before it are returned too, in order.
    pub async fn until(&mut self, ty: &str) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["type"] == ty {
                return (frame, skipped);
            }
            skipped.push(frame);
        }
    }

    /// Sends a ping and waits for its pong: every frame before it is returned.
    /// Proves the connection is alive and that the server handled what came before.
    pub async fn roundtrip(&mut self, id: &str) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": id})).await;
        let (pong, before) = self.until("pong").await;
        assert_eq!(pong["reply_to"], id);
        before
    }

    pub async fn send_text(&mut self, to: &str, body: &str, id: &str) -> Value {
        self.send(json!({"type": "send", "id": id, "to": to, "body": body}))
            .await;
        let (sent, _) = self.until("sent").await;
        assert_eq!(sent["reply_to"], id);
        sent
    }
}

/// Stamps out one `#[tokio::test]` per scenario for a store URL and retention.
#[macro_export]
macro_rules! chat_server_e2e {
    ($module:ident, $store:expr, $retention:expr) => {
        mod $module {
            use super::common::{TestServer, scenarios};
            $crate::chat_server_e2e!(@tests $store, $retention;
                accounts_and_profiles, http_errors_have_the_contract_shape, groups_and_membership,
                websocket_refuses_bad_tokens_before_upgrade, direct_messages_receipts_and_dedup,
                group_messages_and_history, offline_messages_come_by_sync, conversations_list_and_paging,
                typing_presence_and_ping, bad_frames_keep_the_connection, oversized_message_closes_with_1009,
                retention_after_acks, leaving_a_group_stops_delivery);
        }
    };
    (@tests $store:expr, $retention:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let server = TestServer::start($store, $retention).await;
                scenarios::$name(&server).await;
                server.stop().await;
            }
        )*
    };
}
