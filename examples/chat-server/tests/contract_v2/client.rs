//! A client of the contract and nothing more: HTTP calls and WebSocket
//! frames to the nodes of a target. Users are spread over the nodes in
//! turn (one node: all on it), so a scenario's users talk across nodes in
//! the cluster; every call of a user goes to its own node unless the
//! scenario names another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_core::Retention;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait may take before the scenario fails as hung: a
/// guard, not a speed check.
pub const HANG: Duration = Duration::from_secs(20);

/// The target as the scenarios see it: its nodes' base URLs.
pub struct Env {
    /// `store/retention`, for messages.
    pub label: String,
    /// The server's retention mode.
    pub retention: Retention,
    /// `http://ADDR` of each node.
    pub nodes: Vec<String>,
    http: reqwest::Client,
    next_node: AtomicUsize,
}

/// A signed-up user and one of its devices (the token names it).
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
    pub device_id: String,
    /// The index of its node in [`Env::nodes`].
    pub node: usize,
}

/// An HTTP answer: the status and the JSON body (`Null` when empty).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error code of the body, if it is an error.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// Fails unless the status is `status` (the body shows in the message).
    #[track_caller]
    pub fn expect(&self, status: u16, what: &str) -> &Value {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        &self.body
    }

    /// Fails unless this is the contract's error `status` with `code`.
    #[track_caller]
    pub fn refused(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(code)),
            "{what}: {}",
            self.body
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "{what}: {}",
            self.body
        );
    }
}

impl Env {
    pub fn new(label: String, retention: Retention, nodes: Vec<String>) -> Self {
        Self {
            label,
            retention,
            nodes,
            http: reqwest::Client::builder()
                .timeout(HANG)
                .build()
                .expect("an HTTP client"),
            next_node: AtomicUsize::new(0),
        }
    }

    /// The node after `node` (itself on one node).
    pub fn other_node(&self, node: usize) -> usize {
        (node + 1) % self.nodes.len()
    }

    /// Any HTTP call to node `node`.
    pub async fn call_on(
        &self,
        node: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.nodes[node]));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}", self.label));
        let status = res.status().as_u16();
        let json = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let text = res.text().await.expect("an HTTP body");
        // Errors are always JSON; so is every API answer with a body (the
        // web page's files are not).
        let body = if text.is_empty() || (!json && status < 400) {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path}: body is not JSON: {text:?}"))
        };
        Answer { status, body }
    }

    /// An HTTP call of `user`, to its node, with its token.
    pub async fn call(
        &self,
        user: &User,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.call_on(user.node, method, path, Some(&user.token), body)
            .await
    }

    pub async fn get(&self, user: &User, path: &str) -> Answer {
        self.call(user, Method::GET, path, None).await
    }

    pub async fn post(&self, user: &User, path: &str, body: Value) -> Answer {
        self.call(user, Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, user: &User, path: &str) -> Answer {
        self.call(user, Method::DELETE, path, None).await
    }

    /// Signs up a user named `name` plus a random suffix (scenarios share
    /// the server) on the next node in turn.
    pub async fn user(&self, name: &str) -> User {
        let node = self.next_node.fetch_add(1, Ordering::Relaxed) % self.nodes.len();
        self.user_on(name, node).await
    }

    /// Signs up a user on node `node`.
    pub async fn user_on(&self, name: &str, node: usize) -> User {
        let name = format!("{name}{:08x}", rand::random::<u32>());
        let a = self
            .call_on(
                node,
                Method::POST,
                "/api/signup",
                None,
                Some(json!({"username": name, "password": password(&name), "device": "first"})),
            )
            .await;
        let body = a.expect(201, &format!("signup {name}"));
        User {
            id: str_of(&body["user_id"]),
            token: str_of(&body["token"]),
            device_id: str_of(&body["device_id"]),
            name,
            node,
        }
    }

    /// A new device of `user` (a login named `device` on node `node`).
    pub async fn login_on(&self, user: &User, device: &str, node: usize) -> User {
        let a = self
            .call_on(
                node,
                Method::POST,
                "/api/login",
                None,
                Some(
                    json!({"username": user.name, "password": password(&user.name),
                            "device": device}),
                ),
            )
            .await;
        let body = a.expect(200, &format!("login {}", user.name));
        assert_eq!(body["user_id"], user.id.as_str());
        User {
            token: str_of(&body["token"]),
            device_id: str_of(&body["device_id"]),
            node,
            ..user.clone()
        }
    }

    /// A group of `owner` with `members`, and `extra` settings (`join`,
    /// `history`); returns its id.
    pub async fn group(&self, owner: &User, members: &[&User], extra: Value) -> String {
        let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
        let mut body = json!({"name": "team", "members": ids});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let a = self.post(owner, "/api/groups", body).await;
        str_of(&a.expect(201, "create a group")["conversation_id"])
    }

    /// The group as its members answer shows it (`user` must be a member).
    pub async fn members(&self, user: &User, group: &str) -> Value {
        self.get(user, &format!("/api/groups/{group}/members"))
            .await
            .expect(200, "the members answer")
            .clone()
    }

    /// The history of `c` over HTTP as `user` sees it, newest first.
    pub async fn history(&self, user: &User, c: &str) -> Vec<Value> {
        let a = self
            .get(user, &format!("/api/conversations/{c}/messages?limit=200"))
            .await;
        a.expect(200, "history")["messages"]
            .as_array()
            .expect("a messages array")
            .clone()
    }

    /// `user`'s entry of `c` in the conversations list.
    pub async fn summary(&self, user: &User, c: &str) -> Option<Value> {
        let a = self.get(user, "/api/conversations").await;
        a.expect(200, "conversations")["conversations"]
            .as_array()
            .expect("a conversations array")
            .iter()
            .find(|s| s["conversation_id"] == c)
            .cloned()
    }

    /// A WebSocket of `user` to its node, after the connect-time sync:
    /// returns the frames that sync sent (messages and group events).
    pub async fn ws(&self, user: &User) -> (Ws, Vec<Value>) {
        self.ws_on(user.node, &user.token).await
    }

    /// A WebSocket to node `node` with `token`, after the connect-time sync.
    pub async fn ws_on(&self, node: usize, token: &str) -> (Ws, Vec<Value>) {
        let mut ws = self
            .ws_raw(node, token)
            .await
            .unwrap_or_else(|status| panic!("WebSocket refused with {status}"));
        let (_, synced) = ws.until(|f| f["type"] == "synced").await;
        (ws, synced)
    }

    /// A WebSocket upgrade to node `node` with `token`: the socket, or the
    /// HTTP status it was refused with.
    pub async fn ws_raw(&self, node: usize, token: &str) -> Result<Ws, u16> {
        let url = format!("{}/ws", self.nodes[node].replacen("http://", "ws://", 1));
        let mut req = url
            .as_str()
            .into_client_request()
            .expect("a WebSocket request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a header value"),
        );
        match tokio::time::timeout(HANG, tokio_tungstenite::connect_async(req))
            .await
            .expect("the upgrade answers in time")
        {
            Ok((socket, _)) => Ok(Ws { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("WebSocket to {url}: {e}"),
        }
    }
}

pub fn password(name: &str) -> String {
    format!("password-{name}")
}

/// A JSON string's content (fails on anything else).
#[track_caller]
pub fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The connection ended without a close frame.
    Dropped,
}

/// A WebSocket client speaking JSON frames.
pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("send a frame");
    }

    /// The next JSON frame (fails on a close or after [`HANG`]).
    pub async fn next(&mut self) -> Value {
        match self.next_or_closed().await {
            Ok(frame) => frame,
            Err(closed) => panic!("expected a frame, the connection ended: {closed:?}"),
        }
    }

    /// The next JSON frame, or how the connection ended.
    pub async fn next_or_closed(&mut self) -> Result<Value, Closed> {
        loop {
            let next = tokio::time::timeout(HANG, self.socket.next())
                .await
                .expect("a frame within the hang guard");
            match next {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("a JSON frame"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("a binary frame from the server"),
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Err(Closed::Code(u16::from(frame.code)));
                }
                Some(Ok(Message::Close(None)) | Err(_)) | None => return Err(Closed::Dropped),
            }
        }
    }

    /// Reads until the connection ends; returns how (frames before are skipped).
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.next_or_closed().await {
                return closed;
            }
        }
    }

    /// Reads until a frame matching `want`; returns it and the frames before it.
    pub async fn until(&mut self, want: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if want(&frame) {
                return (frame, before);
            }
            before.push(frame);
        }
    }

    /// Sends `frame` (which has an `id`) and reads up to the frame that
    /// answers it (`reply_to` that id): the answer and the frames before.
    pub async fn ask(&mut self, frame: Value) -> (Value, Vec<Value>) {
        let id = frame["id"].clone();
        assert!(id.is_string(), "a frame that wants an answer has an id");
        self.send(frame).await;
        self.until(|f| f["reply_to"] == id).await
    }

    /// Sends a ping and reads up to its pong: returns every frame before it
    /// (proves this node handled what came before).
    pub async fn roundtrip(&mut self, id: &str) -> Vec<Value> {
        self.ask(json!({"type": "ping", "id": id})).await.1
    }

    /// Sends a text message to conversation `c`; returns its id.
    pub async fn say(&mut self, c: &str, body: &str) -> String {
        let id = format!("say-{:x}", rand::random::<u64>());
        let (sent, _) = self
            .ask(json!({"type": "send", "id": id, "conversation_id": c, "body": body}))
            .await;
        assert_eq!(sent["type"], "sent", "send {body:?}: {sent}");
        str_of(&sent["message_id"])
    }

    /// Sends `frame` (with an id) and expects an error `code` in answer.
    pub async fn refused(&mut self, frame: Value, code: &str) {
        let what = frame.to_string();
        let (answer, _) = self.ask(frame).await;
        assert_eq!(
            (answer["type"].as_str(), answer["code"].as_str()),
            (Some("error"), Some(code)),
            "{what} answered {answer}"
        );
    }

    /// Reads until the `message` frame with `message_id`; returns its message.
    pub async fn message(&mut self, message_id: &str) -> Value {
        self.until(|f| f["type"] == "message" && f["message"]["message_id"] == message_id)
            .await
            .0["message"]
            .clone()
    }

    /// Reads until a `group_event` of `c` with `event` about `user` (any
    /// user when `None`).
    pub async fn group_event(&mut self, c: &str, event: &str, user: Option<&User>) -> Value {
        self.until(|f| {
            f["type"] == "group_event"
                && f["conversation_id"] == c
                && f["event"] == event
                && user.is_none_or(|u| f["user_id"] == u.id.as_str())
        })
        .await
        .0
    }

    /// Reads until the `role` event of `c` that gives `user` the role `role`.
    pub async fn role_event(&mut self, c: &str, user: &User, role: &str) -> Value {
        self.until(|f| {
            f["type"] == "group_event"
                && f["conversation_id"] == c
                && f["event"] == "role"
                && f["user_id"] == user.id.as_str()
                && f["role"] == role
        })
        .await
        .0
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Read to the end, so the server has seen the close.
        let _ = tokio::time::timeout(HANG, async {
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await;
    }
}
