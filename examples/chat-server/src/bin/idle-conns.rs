//! `idle-conns`: opens N idle authenticated WebSockets to a running
//! chat-server and reports the server's resident memory per connection,
//! read from `/proc/PID/status` before and after.
//!
//! Run it as a separate process from the server (each process may hold at
//! most 20,000 open files here). The server should run with the cheapest
//! password hashing so that N sign-ups are quick:
//!
//! ```text
//! chat-server --listen 127.0.0.1:8080 --insecure-fast-hashing \
//!   --max-connections-per-addr 0 --max-sockets-per-user 0 --user-rate 0 --addr-rate 0 &
//! idle-conns --server 127.0.0.1:8080 --pid $! --connections 10000
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Opens N idle authenticated WebSockets and reports the server's RSS per connection.
#[derive(Parser)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// The server's process id (for /proc/PID/status).
    #[arg(long)]
    pid: u32,
    /// How many connections to open (one user each).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Spread the clients over this many source addresses 127.0.0.2, 127.0.0.3, ….
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    parallel: usize,
    /// Seconds to wait after the last connection before measuring.
    #[arg(long, default_value_t = 5)]
    settle: u64,
}

fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

async fn signup(http: &reqwest::Client, server: SocketAddr, i: usize, run: u64) -> String {
    let body = serde_json::json!({"username": format!("idle{run}_{i}"), "password": "idle-conns password"});
    let res = http
        .post(format!("http://{server}/api/signup"))
        .json(&body)
        .send()
        .await
        .expect("signup");
    assert_eq!(res.status(), 201, "signup failed");
    let v: serde_json::Value = res.json().await.expect("signup body");
    v["token"].as_str().expect("token").to_owned()
}

async fn connect(server: SocketAddr, source: Ipv4Addr, token: &str) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind source");
    let stream = socket.connect(server).await.expect("connect");
    let mut req = format!("ws://{server}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("WebSocket handshake");
    // Wait for the automatic sync, then keep reading so pings are answered.
    while let Some(Ok(m)) = ws.next().await {
        if m.to_text().is_ok_and(|t| t.contains(r#""type":"synced""#)) {
            break;
        }
    }
    tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tokens: Vec<String> = futures::stream::iter(0..args.connections)
        .map(|i| signup(&http, args.server, i, run))
        .buffer_unordered(args.parallel)
        .collect()
        .await;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let before = rss_kib(args.pid);
    let sources = args.sources.max(1);
    futures::stream::iter(tokens.iter().enumerate())
        .map(|(i, t)| {
            let source = Ipv4Addr::new(127, 0, 0, 2 + (i % sources as usize) as u8);
            connect(args.server, source, t)
        })
        .buffer_unordered(args.parallel)
        .collect::<Vec<()>>()
        .await;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = rss_kib(args.pid);
    let per = (after.saturating_sub(before)) as f64 / args.connections as f64;
    println!(
        "{} idle connections: server RSS {before} KiB before, {after} KiB after, {per:.2} KiB per connection",
        args.connections
    );
}
