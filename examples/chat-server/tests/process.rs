//! The real binary as a process: readiness line, /healthz, clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest wait for the readiness line, and for the exit after SIGTERM.
const BOUND: Duration = Duration::from_secs(60);

/// One run of the binary with no `--store`, in `dir`, until SIGTERM: its
/// readiness line, and what `work` did against its base URL.
fn run_default_store<T>(dir: &std::path::Path, work: impl FnOnce(&str) -> T) -> (String, T) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--retention", "until_delivered"])
        .args([
            "--insecure-fast-hashing",
            "--jwt-secret",
            "a process test secret, long enough",
        ])
        .current_dir(dir)
        .env_remove("CHAT_STORE")
        .env_remove("CHAT_CLUSTER")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chat-server");
    // The log is read on a thread of its own, so that every wait below is
    // bounded: a server that hangs before its readiness line, or after
    // SIGTERM, fails the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let ready = loop {
        match lines.recv_timeout(BOUND) {
            Ok(line) if line.contains("chat-server ready on") => break line,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("no readiness line within {BOUND:?}: {e}");
            }
        }
    };
    let url = ready
        .split("ready on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address in the readiness line")
        .to_owned();
    let done = work(&url);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Until the log ends (the process closed its stdout), within the bound.
    let mut rest = Vec::new();
    let until = std::time::Instant::now() + BOUND;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => rest.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the server did not stop within {BOUND:?} of SIGTERM; log {rest:?}");
            }
        }
    }
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}; last lines {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("chat-server stopped")),
        "{rest:?}"
    );
    (ready, done)
}

/// The binary with no flags but its address: it serves /healthz, keeps its
/// data in a SQLite file under ./chat-data/ (so a newcomer's account
/// survives a restart with nothing to install), and stops cleanly on SIGTERM.
#[test]
fn the_binary_keeps_its_data_across_a_restart_by_default_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let credentials = serde_json::json!({"username": "newcomer", "password": "a fine password"});
    let (ready, status) = run_default_store(dir.path(), |url| {
        rt.block_on(async {
            let health = reqwest::get(format!("{url}/healthz"))
                .await
                .expect("healthz answers");
            assert_eq!(health.status(), 200);
            reqwest::Client::new()
                .post(format!("{url}/api/signup"))
                .json(&credentials)
                .send()
                .await
                .expect("signup answers")
                .status()
        })
    });
    assert_eq!(status, 201);
    assert!(
        ready.contains("(store sqlite://chat-data/chat.db, retention until_delivered)"),
        "{ready}"
    );
    assert!(
        dir.path().join("chat-data/chat.db").is_file(),
        "the database file is there"
    );
    let (_, status) = run_default_store(dir.path(), |url| {
        rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{url}/api/login"))
                .json(&credentials)
                .send()
                .await
                .expect("login answers")
                .status()
        })
    });
    assert_eq!(status, 200, "the account survived the restart");
}

#[test]
fn an_unknown_store_is_refused_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            "mysql://localhost/chat",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run chat-server");
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("unknown store \"mysql://localhost/chat\""),
        "{text}"
    );
}
