//! A database restarted under a running chat-server: the real binary as a
//! process, on a database server of its own that the test stops and starts
//! with `scripts/services` (never the shared one, which other tests use).
//!
//! The scenario ([`chat_survives_a_database_restart`]): two users chat over
//! WebSockets; the database stops; a send answers `unavailable`, stores
//! nothing and the sockets stay open; `/healthz` answers 200 and `/readyz`
//! 503 naming the store; the database starts again; within
//! [`RECOVERY_BOUND`] of it accepting connections, the retry with the same
//! `client_msg_id` is `sent`, once; the recipient gets it once; history and
//! sync are complete and hold nothing of a send that was abandoned during the
//! outage; `/readyz` answers 200; the server stops cleanly on SIGTERM.
//!
//! Which servers run: without `CHAT_TEST_<NAME>_URL` (set by `scripts/test`,
//! meaning this machine runs that database) and without
//! `CHAT_TEST_REQUIRE_SERVICES=1`, the test prints one SKIPPED line and
//! passes, so a plain `cargo test` starts no database. Otherwise it starts
//! its own with `scripts/services` (which installs what is missing), and a
//! server that cannot start fails it.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How soon after the database accepts connections again the server must
/// store the retried send. The bound; the stores need about 1 s
/// (see the crate docs of chat-store-cassandra on recovery).
pub const RECOVERY_BOUND: Duration = Duration::from_secs(10);

/// How long any single wait for an answer may take before the test fails as hung.
pub const HANG: Duration = Duration::from_secs(20);

/// How long `scripts/services up` may take: Cassandra needs 15 to 60 s on
/// two busy cores, plus a download of its jars on a fresh machine.
const SERVICE_START: Duration = Duration::from_secs(600);

const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

fn services_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services")
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
async fn accepts(port: u16) -> bool {
    tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .is_ok_and(|c| c.is_ok())
}

/// One database server of this test's own, run by `scripts/services` in a
/// state dir of its own on free ports; stopped and deleted when dropped.
pub struct Database {
    name: &'static str,
    state_dir: PathBuf,
    env: Vec<(&'static str, String)>,
    port: u16,
    url: String,
}

impl Database {
    /// Starts a dedicated `name` server (`postgres` or `cassandra`), or
    /// returns `None` after printing why it is skipped (see the module docs).
    pub async fn start(name: &'static str) -> Option<Self> {
        Self::start_with(name, Vec::new()).await
    }

    /// [`Database::start`] with more `scripts/services` settings
    /// (`CHAT_POSTGRES_TLS_CERT`, …).
    pub async fn start_with(
        name: &'static str,
        extra_env: Vec<(&'static str, String)>,
    ) -> Option<Self> {
        let url_var = format!("CHAT_TEST_{}_URL", name.to_uppercase());
        if !required() && std::env::var(&url_var).map_or(true, |v| v.is_empty()) {
            skip(&format!(
                "{url_var} is not set (this machine runs no {name}; scripts/test sets it)"
            ));
            return None;
        }
        let port = free_port();
        let state_dir = std::env::temp_dir().join(format!(
            "chat-db-restart-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut env = vec![("CHAT_STATE_DIR", state_dir.display().to_string())];
        match name {
            "postgres" => env.push(("CHAT_POSTGRES_PORT", port.to_string())),
            "cassandra" => {
                env.push(("CHAT_CASSANDRA_PORT", port.to_string()));
                env.push(("CHAT_CASSANDRA_STORAGE_PORT", free_port().to_string()));
                // A second node beside the shared one: half its heap is
                // plenty for two users.
                env.push(("CHAT_CASSANDRA_HEAP", "512m".to_owned()));
            }
            other => panic!("no dedicated {other} here"),
        }
        env.extend(extra_env);
        let mut db = Self {
            name,
            state_dir,
            env,
            port,
            url: String::new(),
        };
        match db.services("up").await {
            Ok(url) => {
                db.url = url;
                Some(db)
            }
            Err(why) => {
                // Its URL is set (or services are required): this machine
                // runs the server, so a dedicated one failing to start is a
                // failure, not a skip.
                panic!("cannot start a dedicated {name}: {why}")
            }
        }
    }

    /// The URL `scripts/services` printed (`postgres://…`, `cassandra://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (a clean stop: PostgreSQL's fast shutdown,
    /// Cassandra's drain on SIGTERM).
    pub async fn stop(&self) {
        self.services("down")
            .await
            .unwrap_or_else(|e| panic!("stopping {}: {e}", self.name));
        assert!(
            !accepts(self.port).await,
            "{} still accepts connections after down",
            self.name
        );
    }

    /// Starts the stopped server again in the background and returns when
    /// it accepts TCP connections, with that instant; the returned task
    /// ends when `scripts/services up` is done (await it).
    pub async fn start_again(&self) -> (Instant, tokio::task::JoinHandle<Result<String, String>>) {
        let up = {
            let (script, env) = (services_script(), self.env.clone());
            let name = self.name;
            tokio::spawn(async move { run_services(&script, &env, "up", name).await })
        };
        let deadline = Instant::now() + SERVICE_START;
        loop {
            if accepts(self.port).await {
                return (Instant::now(), up);
            }
            assert!(
                !up.is_finished(),
                "scripts/services up {} ended, but nothing accepts on port {}",
                self.name,
                self.port
            );
            assert!(
                Instant::now() < deadline,
                "{} did not accept connections within {SERVICE_START:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn services(&self, cmd: &str) -> Result<String, String> {
        run_services(&services_script(), &self.env, cmd, self.name).await
    }

    fn log_file(&self) -> PathBuf {
        match self.name {
            "postgres" => self.state_dir.join("postgres/postgresql.log"),
            _ => self.state_dir.join("cassandra/cassandra.log"),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail(&format!("{} log", self.name), &read_lines(&self.log_file()));
        }
        let down = Command::new(services_script())
            .args(["down", self.name])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !down.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("could not stop the dedicated {}: {down:?}", self.name);
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Runs `scripts/services CMD NAME` with `env`; its last line of stdout
/// (the URL, for `up`), or its stderr when it fails.
async fn run_services(
    script: &Path,
    env: &[(&'static str, String)],
    cmd: &str,
    name: &str,
) -> Result<String, String> {
    let run = tokio::process::Command::new(script)
        .args([cmd, name])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("CHAT_CASSANDRA_FRESH")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SERVICE_START, run)
        .await
        .map_err(|_| format!("scripts/services {cmd} {name} took over {SERVICE_START:?}"))?
        .map_err(|e| format!("cannot run scripts/services: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "scripts/services {cmd} {name} failed ({}):\n{stderr}",
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned())
}

fn skip(why: &str) {
    // Straight to stderr: libtest captures eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED chat-server database restart test: {why}"
    );
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn print_tail(what: &str, lines: &[String]) {
    let from = lines.len().saturating_sub(40);
    eprintln!("--- last lines of the {what} ---");
    for line in &lines[from..] {
        eprintln!("{line}");
    }
}

/// The chat-server binary as a child process.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Server {
    /// Starts chat-server on `store` and waits for its readiness line.
    pub fn start(store: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--store", store])
            .args(["--jwt-secret", "a test secret of at least 32 bytes!"])
            .arg("--insecure-fast-hashing")
            .env_remove("CHAT_CLUSTER")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chat-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        // Reads every line for as long as the server runs: a full pipe would
        // block the server's logging, and the lines explain a failure.
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("chat-server ready on") {
                    let _ = ready_tx.send(line.clone());
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                print_tail("chat-server log", &log.lock().expect("log lock"));
                panic!("chat-server printed no readiness line")
            });
        let addr = ready
            .split("ready on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {ready:?}"));
        Self {
            child,
            addr,
            log,
            http: reqwest::Client::builder()
                .timeout(HANG)
                .build()
                .expect("HTTP client"),
        }
    }

    /// Any HTTP call: the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("HTTP call");
        let status = res.status().as_u16();
        let text = res.text().await.expect("HTTP body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text:?}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// Signs `name` up; its user id and token.
    pub async fn signup(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/signup",
                None,
                Some(json!({"username": name, "password": format!("pw-{name}-long")})),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        (
            body["user_id"].as_str().expect("user_id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }

    /// A WebSocket for `token`, after its automatic sync (whose messages are returned).
    pub async fn connect(&self, token: &str) -> (Client, Vec<Value>) {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .expect("ws request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (socket, _) = tokio::time::timeout(HANG, tokio_tungstenite::connect_async(req))
            .await
            .expect("WebSocket connects in time")
            .expect("WebSocket connects");
        let mut client = Client::spawn(socket);
        let (_, synced) = client.until("synced").await;
        let messages = synced
            .into_iter()
            .map(|f| {
                assert_eq!(f["type"], "message", "during the first sync: {f}");
                f["message"].clone()
            })
            .collect();
        (client, messages)
    }

    /// SIGTERM, then a clean exit within [`HANG`].
    pub fn stop(mut self) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success());
        let deadline = Instant::now() + HANG;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait for chat-server") {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "chat-server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(exit.success(), "chat-server exit {exit:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail("chat-server log", &self.log.lock().expect("log lock"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket client that reads all the time, as a browser does (so it
/// answers the server's pings during a long outage), and queues the JSON
/// frames it receives.
pub struct Client {
    out: mpsc::UnboundedSender<Message>,
    frames: mpsc::UnboundedReceiver<Value>,
}

impl Client {
    fn spawn<S>(socket: tokio_tungstenite::WebSocketStream<S>) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let (incoming, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut sink, mut stream) = socket.split();
            loop {
                tokio::select! {
                    msg = outgoing.recv() => match msg {
                        Some(msg) => if sink.send(msg).await.is_err() { break },
                        None => { let _ = sink.close().await; break }
                    },
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            let value = serde_json::from_str(text.as_str())
                                .unwrap_or_else(|_| json!({"type": "not json", "text": text.as_str()}));
                            if incoming.send(value).is_err() { break }
                        }
                        Some(Ok(Message::Close(close))) => {
                            let _ = incoming.send(json!({"type": "closed", "close": format!("{close:?}")}));
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            let _ = incoming.send(json!({"type": "closed", "error": e.to_string()}));
                            break;
                        }
                        None => break,
                    },
                }
            }
        });
        Self { out, frames }
    }

    pub fn send(&self, frame: Value) {
        self.out
            .send(Message::text(frame.to_string()))
            .expect("the client task runs");
    }

    /// The next frame; fails the test after [`HANG`] or when the socket closed.
    pub async fn next(&mut self) -> Value {
        let frame = tokio::time::timeout(HANG, self.frames.recv())
            .await
            .expect("a frame within the hang guard")
            .expect("the socket is open");
        assert_ne!(frame["type"], "closed", "the socket closed: {frame}");
        frame
    }

    /// Frames up to the first of type `ty`: that frame and those before it.
    pub async fn until(&mut self, ty: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["type"] == ty {
                return (frame, before);
            }
            before.push(frame);
        }
    }

    /// The answer to the request with `id` (any frame with that
    /// `reply_to`), and the frames before it.
    pub async fn answer(&mut self, id: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["reply_to"] == id {
                return (frame, before);
            }
            before.push(frame);
        }
    }

    /// A ping and its pong: proves the socket is open and the server handled
    /// everything before; returns the frames that came first.
    pub async fn roundtrip(&mut self, id: &str) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": id}));
        let (pong, before) = self.answer(id).await;
        assert_eq!(pong["type"], "pong", "{pong}");
        before
    }
}

/// The `message` frames among `frames`, as their inner messages.
fn messages(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| &f["message"])
        .collect()
}

/// Ids of `messages`, in order.
fn ids<'a>(messages: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| m["message_id"].as_str().expect("message_id").to_owned())
        .collect()
}

async fn readyz(server: &Server) -> (u16, Value) {
    server.get("/readyz", None).await
}

/// The whole scenario of the module docs, on `db` (running) with the
/// server's store at `store`.
pub async fn chat_survives_a_database_restart(db: &Database, store: &str) {
    let server = Server::start(store);
    let (status, body) = readyz(&server).await;
    assert_eq!((status, &body), (200, &json!({"status": "ready"})));

    // Two users chat.
    let (alice_id, alice) = server.signup("alice").await;
    let (bob_id, bob) = server.signup("bob").await;
    let (mut a, _) = server.connect(&alice).await;
    let (mut b, synced) = server.connect(&bob).await;
    assert!(synced.is_empty());
    a.send(
        json!({"type": "send", "id": "s1", "to": bob_id, "body": "before",
                  "client_msg_id": "k-before"}),
    );
    let (sent1, _) = a.answer("s1").await;
    assert_eq!(sent1["type"], "sent", "{sent1}");
    let conversation = sent1["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let (m1, _) = b.until("message").await;
    assert_eq!(m1["message"]["message_id"], sent1["message_id"]);
    b.send(json!({"type": "ack", "conversation_id": conversation,
                  "message_id": sent1["message_id"]}));
    b.roundtrip("acked").await;

    // The database goes away.
    db.stop().await;
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "the process is up");
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("store: "), "{body}");
    let retry = json!({"type": "send", "id": "during", "to": bob_id, "body": "retried",
                       "client_msg_id": "k-retried"});
    a.send(retry.clone());
    let (during, _) = a.answer("during").await;
    assert_eq!(
        (during["type"].as_str(), during["code"].as_str()),
        (Some("error"), Some("unavailable")),
        "a send with the database down: {during}"
    );
    // A send that the client gives up on: it must leave nothing behind.
    a.send(
        json!({"type": "send", "id": "abandoned", "to": bob_id, "body": "abandoned",
                  "client_msg_id": "k-abandoned"}),
    );
    let (abandoned, _) = a.answer("abandoned").await;
    assert_eq!(abandoned["code"], "unavailable", "{abandoned}");
    a.roundtrip("a open during the outage").await;
    let early = b.roundtrip("b open during the outage").await;
    assert!(
        messages(&early).is_empty(),
        "nothing reaches bob: {early:?}"
    );

    // The database comes back: the client retries the same send.
    let (accepting, up) = db.start_again().await;
    let mut attempt = 0;
    let sent2 = loop {
        attempt += 1;
        let id = format!("retry-{attempt}");
        a.send(
            json!({"type": "send", "id": id, "to": bob_id, "body": "retried",
                      "client_msg_id": "k-retried"}),
        );
        let (answer, _) = a.answer(&id).await;
        if answer["type"] == "sent" {
            break answer;
        }
        assert_eq!(answer["code"], "unavailable", "{answer}");
        assert!(
            accepting.elapsed() < RECOVERY_BOUND,
            "still {answer} {:?} after the database accepted connections",
            accepting.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let recovered = accepting.elapsed();
    eprintln!(
        "{}: first send stored {recovered:?} after the database accepted connections \
         (attempt {attempt})",
        db.name
    );
    up.await
        .expect("the up task")
        .unwrap_or_else(|e| panic!("scripts/services up: {e}"));

    // Stored once: a second retry answers the same id and stores nothing.
    a.send(retry);
    let (again, _) = a.answer("during").await;
    assert_eq!(again["type"], "sent", "{again}");
    assert_eq!(again["message_id"], sent2["message_id"]);
    // Delivered once, live, to bob's socket that stayed open throughout.
    let (m2, before) = b.until("message").await;
    assert!(messages(&before).is_empty(), "{before:?}");
    assert_eq!(m2["message"]["message_id"], sent2["message_id"]);
    assert_eq!(m2["message"]["body"], "retried");
    let after = b.roundtrip("after the retries").await;
    assert!(messages(&after).is_empty(), "delivered once: {after:?}");

    // History: both messages once each, newest first, nothing abandoned.
    let (status, body) = server
        .get(
            &format!("/api/conversations/{conversation}/messages"),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let history = body["messages"].as_array().expect("messages");
    assert_eq!(
        ids(history),
        ids([&sent2, &sent1]),
        "history after the restart: {body}"
    );
    // Sync: bob acked the first message before the outage, not the second.
    b.send(json!({"type": "sync", "id": "sync"}));
    let (_, synced) = b.answer("sync").await;
    assert_eq!(ids(messages(&synced)), ids([&sent2]), "{synced:?}");
    b.send(json!({"type": "ack", "conversation_id": conversation,
                  "message_id": sent2["message_id"]}));
    b.roundtrip("acked again").await;
    let (_, synced) = server.connect(&bob).await;
    assert!(synced.is_empty(), "nothing left to sync: {synced:?}");
    // And the chat goes on both ways.
    b.send(json!({"type": "send", "id": "reply", "to": alice_id, "body": "back"}));
    let (reply, _) = b.answer("reply").await;
    assert_eq!(reply["type"], "sent", "{reply}");
    let (m3, _) = a.until("message").await;
    assert_eq!(m3["message"]["message_id"], reply["message_id"]);

    let (status, body) = readyz(&server).await;
    assert_eq!((status, &body), (200, &json!({"status": "ready"})));
    drop((a, b));
    server.stop();
}
