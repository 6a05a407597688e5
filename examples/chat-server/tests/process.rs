//! The real binary as a process: readiness line, /healthz, clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_binary_starts_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--retention", "until_delivered"])
        .env_remove("CHAT_STORE")
        .env_remove("CHAT_CLUSTER")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chat-server");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map(|l| l.expect("a log line"))
        .find(|l| l.contains("chat-server ready on"))
        .expect("a readiness line");
    assert!(
        ready.contains("(store memory, retention until_delivered)"),
        "{ready}"
    );
    let url = ready
        .split("ready on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address in the readiness line")
        .to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("{url}/healthz"))
            .await
            .expect("healthz answers")
            .status()
    });
    assert_eq!(status, 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}; last lines {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("chat-server stopped")),
        "{rest:?}"
    );
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
