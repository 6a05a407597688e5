//! `chat-load` run as a process against a chat-server started in this
//! process: a short run must deliver messages and see no errors. A check of
//! correctness (sends answered, deliveries arrive and are counted), not of
//! speed.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chat_server::{Bound, Config};
use serde_json::Value;
use tokio::sync::oneshot;

/// How long the run may take before the test fails as hung (a guard, not
/// a speed check: the run itself lasts about 3 s).
const HANG: Duration = Duration::from_secs(120);

/// A chat server on its own runtime, stopped when dropped.
struct Server {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start() -> Self {
        Self::start_with(chat_server::config::Protection::unlimited())
    }

    /// A server with the given abuse protection (the default one is what a
    /// public server runs with).
    fn start_with(protection: chat_server::config::Protection) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            insecure_fast_hashing: true,
            jwt_secret: Some("the chat-load test secret, 32+ bytes".into()),
            protection,
            store: "memory".into(),
            ..Config::default()
        };
        let bound = runtime
            .block_on(Bound::bind(&config))
            .expect("server starts");
        let addr = bound.local_addr().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(async move {
            bound
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            addr,
            stop: Some(stop),
            runtime: Some(runtime),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Runs chat-load with `args`, killing it if it hangs.
fn chat_load(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chat-load starts");
    let started = Instant::now();
    while child.try_wait().expect("wait for chat-load").is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("chat-load hung for {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("chat-load output")
}

#[test]
fn a_short_run_delivers_without_errors() {
    let server = Server::start();
    let out = chat_load(&[
        "--server",
        &server.addr,
        "--users",
        "20",
        "--group-size",
        "5",
        "--direct-ratio",
        "0.5",
        "--rate",
        "100",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--source-addrs",
        "127.0.0.2-127.0.0.3",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chat-load failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));

    assert_eq!(report["connections"]["opened"], 20, "{report}");
    assert_eq!(report["connections"]["failed"], 0, "{report}");
    assert_eq!(report["connections"]["dropped"], 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(report["messages_sent"].as_u64().unwrap() > 0, "{report}");
    assert!(report["deliveries"].as_u64().unwrap() > 0, "{report}");
    // Every send was answered and every promised delivery arrived.
    assert_eq!(report["unanswered_sends"], 0, "{report}");
    assert_eq!(report["undelivered"], 0, "{report}");
    // Each measured send was timed at its answer, and each delivery at arrival.
    assert_eq!(
        report["sent_latency_ms"]["count"], report["messages_sent"],
        "{report}"
    );
    assert_eq!(
        report["delivery_latency_ms"]["count"], report["deliveries"],
        "{report}"
    );
}

/// The receipt and typing storm of a big group, at a size CI affords (the
/// full-size runs are in docs/benchmarks.md): every member acks and reads
/// every message and types before each send, on a server with the default
/// limits of a public server. Nobody is closed, every send is answered and
/// every message delivered, and receipts reach the senders.
#[test]
fn a_big_group_of_acking_reading_typing_members_closes_nobody() {
    let server = Server::start_with(chat_server::config::Protection::default());
    let pid = std::process::id().to_string();
    let out = chat_load(&[
        "--server",
        &server.addr,
        "--users",
        "300",
        "--groups",
        "1",
        "--rate",
        "5",
        "--warmup",
        "0.5",
        "--duration",
        "3",
        "--read",
        "--typing",
        "--server-pid",
        &pid,
        // The default per-address budget is for one person's devices, not
        // for 300 users: they come from 100 addresses, as they would.
        "--source-addrs",
        "127.0.0.2-127.0.0.101",
        "--connect-concurrency",
        "16",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chat-load failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["connections"]["opened"], 300, "{report}");
    assert_eq!(report["connections"]["dropped"], 0, "{report}");
    assert_eq!(report["closes"], serde_json::json!({}), "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(report["unanswered_sends"], 0, "{report}");
    assert_eq!(report["undelivered"], 0, "{report}");
    assert!(report["messages_sent"].as_u64().unwrap() > 0, "{report}");
    assert!(report["receipt_frames"].as_u64().unwrap() > 0, "{report}");
    // This process is the server: its CPU over the window is reported.
    assert!(report["cpu"]["server_s"].is_number(), "{report}");
    assert!(
        report["cpu"]["server_us_per_delivery"].is_number(),
        "{report}"
    );
}

#[test]
fn non_loopback_servers_are_refused() {
    let out = chat_load(&["--server", "192.0.2.1:8080", "--users", "2"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
