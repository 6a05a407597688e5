//! The binary's log lines as an operator's file or journal gets them (stdout
//! a pipe, not a terminal): no colour codes, one line per request with its
//! request id (the client's `x-request-id` kept, a fresh one otherwise and
//! answered in the response), `conn` and `user` on a WebSocket's lines,
//! never a password, token, JWT secret or store password, even at debug;
//! and a fatal error names its root cause.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const JWT_SECRET: &str = "jwt-secret-that-must-never-be-logged-0123456789";
const PASSWORD: &str = "password-that-must-never-be-logged";
/// Longest a step waits before the test fails.
const HANG: Duration = Duration::from_secs(20);

/// Reads `out` on a thread; the text so far is in the returned handle's
/// buffer once the process ends.
fn collect(mut out: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    })
}

/// Waits for the readiness line in the log file the server writes (read
/// through a pipe would need a second reader) and returns the base URL.
fn ready_url(log: &std::path::Path) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("ready on ").nth(1) {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(started.elapsed() < HANG, "no readiness line in\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_are_plain_carry_request_ids_and_hide_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--store", "memory"])
        .args(["--jwt-secret", JWT_SECRET, "--insecure-fast-hashing"])
        // Debug shows the most a misconfigured operator could see.
        .args(["--log-filter", "debug", "--drain-grace-secs", "1"])
        .env_remove("CHAT_CLUSTER")
        .env_remove("CHAT_CONFIG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::from(log))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-server");
    let stderr = collect(child.stderr.take().unwrap());
    let url = ready_url(&log_path);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (token, fresh_id) = rt.block_on(async {
        let http = reqwest::Client::builder().timeout(HANG).build().unwrap();
        let signup = http
            .post(format!("{url}/api/signup"))
            .header("x-request-id", "probe-42")
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), 201);
        assert_eq!(signup.headers()["x-request-id"], "probe-42");
        let login = http
            .post(format!("{url}/api/login"))
            .header("x-request-id", "an id with spaces")
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        let fresh_id = login.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(fresh_id, "an id with spaces", "an odd id is replaced");
        let body: Value = login.json().await.unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        // The token in the query, where a careless log would show it.
        let req = format!("{}/ws?token={token}", url.replace("http", "ws"))
            .into_client_request()
            .unwrap();
        let (mut ws, _) = tokio::time::timeout(HANG, tokio_tungstenite::connect_async(req))
            .await
            .unwrap()
            .unwrap();
        ws.send(Message::text(
            json!({"type": "send", "id": "1", "to": body["user_id"], "body": "note to self"})
                .to_string(),
        ))
        .await
        .unwrap();
        loop {
            let frame = tokio::time::timeout(HANG, ws.next()).await.unwrap();
            let text = frame.unwrap().unwrap().into_text().unwrap();
            if text.contains("\"sent\"") {
                break;
            }
        }
        (token, fresh_id)
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log_path).unwrap() + &stderr.join().unwrap();

    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    for secret in [JWT_SECRET, PASSWORD, &token] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
    let line =
        |needle: &str, also: &str| text.lines().any(|l| l.contains(needle) && l.contains(also));
    assert!(
        line("req=probe-42", "status=201"),
        "signup's request line:\n{text}"
    );
    assert!(
        line(&format!("req={fresh_id}"), "status=200"),
        "login's line with the fresh id:\n{text}"
    );
    assert!(
        line("conn=", "user="),
        "a WebSocket line names conn and user:\n{text}"
    );
}

#[test]
fn a_fatal_error_names_its_cause_and_not_the_store_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args([
            "--store",
            "postgres://chat:store-password-never-logged@127.0.0.1:1/chat?connect_timeout=5",
        ])
        .env_remove("CHAT_CLUSTER")
        .env_remove("CHAT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run chat-server");
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.to_lowercase().contains("connection refused"),
        "the root cause is named:\n{text}"
    );
    assert!(!text.contains("store-password-never-logged"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}
