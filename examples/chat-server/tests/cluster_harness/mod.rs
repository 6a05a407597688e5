//! The multi-node harness: chat-server processes sharing one Redis under a
//! fresh prefix and one PostgreSQL schema, an HTTP client and a WebSocket
//! client of JSON frames.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_cluster_redis::{RedisCluster, RedisOptions};
use chat_core::cluster::{Discovery, NodeInfo};
use chat_core::model::now_millis;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait may take before the test fails as hung: a
/// guard, not a speed check.
pub const HANG: Duration = Duration::from_secs(20);

/// Heartbeat of the test nodes: a killed node's users go offline after
/// three of them plus one reap. Short to keep the tests quick, long enough
/// that a node busy on a loaded two-core machine is not taken for dead.
pub const HEARTBEAT_MS: u64 = 250;

/// The test nodes' id lease: a node mints ids until this minus one
/// heartbeat after its last renewal, so a renewal held up on a loaded
/// machine (or a Redis outage of a few seconds) never stops its sends; a
/// killed node's id is free again after it.
pub const LEASE_MS: u64 = 5_000;

const SECRET: &str = "the cluster test secret, 32+ bytes";

/// One chat-server process, SIGKILLed on drop.
pub struct Node {
    child: Child,
    /// Its worker id, as its readiness line names it (`node-N`).
    pub id: u16,
    /// `http://ADDR`.
    pub http: String,
    /// `ws://ADDR/ws`: the chat_url it registers.
    pub ws: String,
}

/// How to start a node: see [`Node::launch`].
pub struct Launch<'a> {
    /// Listens on 127.0.0.`host`, a free port.
    pub host: u8,
    /// `--node-id`, or none to let the node claim a free id.
    pub id: Option<u16>,
    pub redis: &'a str,
    pub prefix: &'a str,
    pub store: &'a str,
    /// `--push-webhook`.
    pub push_webhook: Option<&'a str>,
    /// `--retention` (the server's default when `None`).
    pub retention: Option<&'a str>,
}

impl Node {
    /// Starts node `id` on 127.0.0.`id`, a free port, in the cluster `redis`
    /// under `prefix`, on the shared `store` (see [`shared_store`]).
    pub fn start(id: u16, redis: &str, prefix: &str, store: &str) -> Self {
        let node = Self::launch(&Launch {
            host: u8::try_from(id).expect("a host byte"),
            id: Some(id),
            redis,
            prefix,
            store,
            push_webhook: None,
            retention: None,
        })
        .unwrap_or_else(|log| panic!("node {id} did not start:\n{log}"));
        assert_eq!(node.id, id, "node {id} runs under its --node-id");
        node
    }

    /// Starts a node as `how` says. `Err` holds what it logged when it
    /// exited instead of getting ready (with its exit status).
    pub fn launch(how: &Launch<'_>) -> Result<Self, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        command
            .args(["--listen", &format!("127.0.0.{}:0", how.host)])
            .args(["--store", how.store])
            .args(["--cluster", how.redis, "--cluster-prefix", how.prefix])
            .args(["--heartbeat-ms", &HEARTBEAT_MS.to_string()])
            .args(["--node-lease-ms", &LEASE_MS.to_string()])
            .args(["--jwt-secret", SECRET, "--insecure-fast-hashing"])
            // Functional tests send as fast as they can from one address:
            // no write budgets or connection caps (tests/*_limits.rs test those).
            .args(["--user-rate", "0", "--addr-rate", "0"])
            .args([
                "--max-connections-per-addr",
                "0",
                "--max-sockets-per-user",
                "0",
            ])
            .env_remove("CHAT_STORE")
            .env_remove("CHAT_PUBLIC_URL")
            .env_remove("CHAT_NODE_ID")
            .env_remove("CHAT_PUSH_WEBHOOK")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(id) = how.id {
            command.args(["--node-id", &id.to_string()]);
        }
        if let Some(url) = how.push_webhook {
            command.args(["--push-webhook", url]);
        }
        if let Some(retention) = how.retention {
            command.args(["--retention", retention]);
        }
        let mut child = command.spawn().expect("start chat-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut log = Vec::new();
        let ready = lines.by_ref().map_while(Result::ok).find(|l| {
            log.push(l.clone());
            l.contains("chat-server ready on")
        });
        let Some(ready) = ready else {
            let status = child.wait().expect("wait for chat-server");
            log.push(format!("(exited: {status})"));
            return Err(log.join("\n"));
        };
        // Keep draining the log so the node never blocks on a full pipe
        // (and show it with CHAT_TEST_NODE_LOGS=1, to debug a test).
        let show = std::env::var("CHAT_TEST_NODE_LOGS").is_ok_and(|v| v == "1");
        let host = how.host;
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if show {
                    eprintln!("[127.0.0.{host}] {line}");
                }
            }
        });
        let id = ready
            .split(" as node-")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no node id in the readiness line: {ready}"));
        let http = ready
            .split("ready on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("an address in the readiness line")
            .to_owned();
        let ws = format!("{}/ws", http.replacen("http://", "ws://", 1));
        Ok(Self {
            child,
            id,
            http,
            ws,
        })
    }

    /// SIGKILL: no goodbye to presence, discovery or clients.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the node drains (see [`Node::wait_exit`]).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit (at most [`HANG`]) and returns its
    /// status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not exit within {HANG:?}",
                self.name()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn name(&self) -> String {
        format!("node-{}", self.id)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The store every node of one test shares: the PostgreSQL test server, in
/// a fresh schema (created and migrated here, so the nodes find it ready,
/// and dropped when the test drops this). Derefs to the `--store` URL.
pub struct SharedStore {
    url: String,
    _schema: chat_store_postgres::testing::SchemaGuard,
}

impl std::ops::Deref for SharedStore {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

/// A [`SharedStore`], or `None` after chat_store_postgres::testing printed
/// the skip line; it panics instead under CHAT_TEST_REQUIRE_SERVICES=1.
pub async fn shared_store() -> Option<SharedStore> {
    let schema = chat_store_postgres::testing::fresh_migrated_schema().await?;
    let url = chat_store_postgres::testing::test_url()?;
    let join = if url.contains('?') { '&' } else { '?' };
    Some(SharedStore {
        url: format!("{url}{join}schema={}", schema.schema()),
        _schema: schema,
    })
}

/// A user signed up through the API.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

pub async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("HTTP call");
    let status = res.status().as_u16();
    let text = res.text().await.expect("HTTP body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn signup(node: &Node, name: &str) -> User {
    let (status, body) = post(
        &node.http,
        "/api/signup",
        None,
        json!({"username": name, "password": format!("password-{name}")}),
    )
    .await;
    assert_eq!(status, 201, "signup {name}: {body}");
    User {
        id: body["user_id"].as_str().unwrap().to_owned(),
        name: name.to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

/// Logs in through `node`'s API; returns the token and the chat_url.
pub async fn login(node: &Node, user: &User) -> (String, String) {
    let (status, body) = post(
        &node.http,
        "/api/login",
        None,
        json!({"username": user.name, "password": format!("password-{}", user.name)}),
    )
    .await;
    assert_eq!(status, 200, "login {}: {body}", user.name);
    (
        body["token"].as_str().unwrap().to_owned(),
        body["chat_url"].as_str().unwrap().to_owned(),
    )
}

/// A WebSocket client speaking JSON frames.
pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects to `url` with `token`, and reads up to the first `synced`;
    /// returns the messages the sync handed over.
    pub async fn connect(url: &str, token: &str) -> (Self, Vec<Value>) {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio::time::timeout(HANG, tokio_tungstenite::connect_async(req))
            .await
            .expect("WebSocket connects in time")
            .expect("WebSocket connects");
        let mut ws = Self { socket };
        let (_, before) = ws.until(|f| f["type"] == "synced").await;
        let messages = before
            .into_iter()
            .filter(|f| f["type"] == "message")
            .map(|f| f["message"].clone())
            .collect();
        (ws, messages)
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("send a frame");
    }

    /// The next JSON frame.
    pub async fn next(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(HANG, self.socket.next())
                .await
                .expect("a frame within the hang guard");
            match next {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).expect("a JSON frame");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next JSON frame, or `None` once the connection is closed or
    /// broken (its node died). Waits as long as it takes: callers bound it.
    pub async fn next_or_closed(&mut self) -> Option<Value> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("a JSON frame"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("a binary frame from the server"),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
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

    /// The next frame within `wait`, if any (for retry loops only).
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.next()).await.ok()
    }

    /// Sends a ping and reads up to its pong: returns every frame before it.
    pub async fn roundtrip(&mut self, id: &str) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": id})).await;
        let (_, before) = self
            .until(|f| f["type"] == "pong" && f["reply_to"] == id)
            .await;
        before
    }

    /// Sends `body` to `to` with `id` as frame id and client_msg_id, and
    /// reads up to its `sent`; returns it and the frames before it.
    pub async fn send_to(&mut self, to: &User, body: &str, id: &str) -> (Value, Vec<Value>) {
        self.send(json!({"type": "send", "id": id, "to": to.id, "body": body,
                         "client_msg_id": id}))
            .await;
        self.until(|f| f["reply_to"] == id).await
    }

    /// Reads until the server closes the connection (each read bounded by
    /// [`HANG`]): the frames before, and the close frame's code and reason
    /// (`None` when the connection broke without one).
    pub async fn until_close(&mut self) -> (Vec<Value>, Option<(u16, String)>) {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(HANG, self.socket.next())
                .await
                .expect("a frame or the close within the hang guard");
            match next {
                Some(Ok(Message::Text(t))) => {
                    frames.push(serde_json::from_str(t.as_str()).expect("a JSON frame"));
                }
                Some(Ok(Message::Close(close))) => {
                    let close = close.map(|c| (u16::from(c.code), c.reason.to_string()));
                    return (frames, close);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (frames, None),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Whether `frame` says `user` is `status`.
pub fn presence_is(frame: &Value, user: &User, status: &str) -> bool {
    frame["type"] == "presence" && frame["user_id"] == user.id.as_str() && frame["status"] == status
}

/// Discovery of the deployment under `prefix`, as the nodes see it.
pub async fn discovery(redis: &str, prefix: &str) -> impl Discovery + use<> {
    RedisCluster::connect(redis, RedisOptions::with_prefix(prefix))
        .await
        .expect("the test's own Redis connection")
        .discovery()
}

/// Polls discovery until `done` holds for the live nodes, and returns them.
pub async fn live_until(
    discovery: &impl Discovery,
    what: &str,
    done: impl Fn(&[NodeInfo]) -> bool,
) -> Vec<NodeInfo> {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let live = discovery
            .live_nodes(now_millis())
            .await
            .expect("live_nodes");
        if done(&live) {
            return live;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "discovery never showed {what}: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(HEARTBEAT_MS / 2)).await;
    }
}

/// The load discovery shows for `node`.
pub fn load_of(live: &[NodeInfo], node: &Node) -> Option<u64> {
    live.iter()
        .find(|n| n.id.as_str() == node.name())
        .map(|n| n.load)
}

/// Creates a group named `name` through `node`'s API, owned by `owner`,
/// with `members`; returns its conversation id.
pub async fn group(node: &Node, owner: &User, members: &[&User]) -> String {
    let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
    let (status, body) = post(
        &node.http,
        "/api/groups",
        Some(&owner.token),
        json!({"name": "team", "members": ids}),
    )
    .await;
    assert_eq!(status, 201, "create group: {body}");
    body["conversation_id"].as_str().unwrap().to_owned()
}

/// A push webhook on 127.0.0.1:0 that answers 204 and hands every body it
/// gets to the receiver.
pub async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.0);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// Everything live between two users on two nodes, both ways, each step
/// answered within the hang guard: a message from `a` reaches `b`, `b`
/// types, acks and reads it and `a` gets typing and both receipts, and
/// `b`'s answer reaches `a`. `tag` keeps the frame ids of rounds apart.
pub async fn cross_node_round(a: &mut Ws, a_user: &User, b: &mut Ws, b_user: &User, tag: &str) {
    let (sent, _) = a
        .send_to(b_user, &format!("{tag}: hello"), &format!("{tag}-a"))
        .await;
    assert_eq!(sent["type"], "sent", "{tag}: {sent}");
    let (got, _) = b
        .until(|f| f["type"] == "message" && f["message"]["message_id"] == sent["message_id"])
        .await;
    assert_eq!(got["message"]["sender_id"], a_user.id.as_str());
    let conversation = sent["conversation_id"].clone();
    b.send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let (typing, _) = a
        .until(|f| f["type"] == "typing" && f["user_id"] == b_user.id.as_str())
        .await;
    assert_eq!(typing["conversation_id"], conversation, "{tag}");
    for (kind, status) in [("ack", "delivered"), ("read", "read")] {
        b.send(json!({"type": kind, "conversation_id": conversation,
                      "message_id": sent["message_id"]}))
            .await;
        let (receipt, _) = a
            .until(|f| {
                f["type"] == "receipt"
                    && f["status"] == status
                    && f["message_id"] == sent["message_id"]
            })
            .await;
        assert_eq!(receipt["user_id"], b_user.id.as_str(), "{tag}: {receipt}");
    }
    let (back, _) = b
        .send_to(a_user, &format!("{tag}: hi"), &format!("{tag}-b"))
        .await;
    assert_eq!(back["type"], "sent", "{tag}: {back}");
    a.until(|f| f["type"] == "message" && f["message"]["message_id"] == back["message_id"])
        .await;
}
