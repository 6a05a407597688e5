//! The server's network limits, tried from outside over raw TCP: slow and
//! idle clients are closed by the header, idle and body timeouts; the caps on
//! connections per address and overall answer (429, 503) instead of
//! dropping; browsers of other origins cannot open a WebSocket; a user's
//! WebSockets are capped; every response carries the security headers.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_server::Config;
use chat_server::config::Protection;
use common::{HANG, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn config(protection: Protection) -> Config {
    Config {
        protection,
        ..TestServer::config()
    }
}

/// Connects to `addr` from the loopback address `from` (127.0.0.x): each
/// source address is its own client address to the server.
async fn connect_from(addr: SocketAddr, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback source address");
    socket.connect(addr).await.expect("connect")
}

/// Reads until the server closes (EOF or reset); returns what it sent and
/// how long that took. Fails the test after [`HANG`].
async fn read_to_close(tcp: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(HANG, tcp.read(&mut buf))
            .await
            .expect("the server closes the connection within the hang guard");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_idle_sockets_and_slow_bodies_are_closed() {
    let s = TestServer::start_with(config(Protection {
        header_timeout_secs: 1.0,
        idle_timeout_secs: 1.5,
        body_timeout_secs: 1.0,
        ..Protection::default()
    }))
    .await;

    // Slowloris: a header trickled a byte at a time never completes; the
    // header timeout closes the socket about a second after its first byte.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if slow.write_all(&[*b]).await.is_err() {
                return slow;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!("cycle never ends")
    });
    let mut slow = tokio::time::timeout(HANG, trickle)
        .await
        .expect("the trickle is cut off within the hang guard")
        .unwrap();
    let (_, _) = read_to_close(&mut slow).await;

    // A half-sent WebSocket upgrade is just as slow a header.
    let mut half = TcpStream::connect(s.addr).await.unwrap();
    half.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let (_, took) = read_to_close(&mut half).await;
    assert!(took < HANG, "{took:?}");

    // An idle socket that never sends a byte is closed after the idle timeout.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    let (sent, took) = read_to_close(&mut idle).await;
    assert!(sent.is_empty(), "{sent}");
    assert!(
        took >= Duration::from_millis(1000),
        "closed too early: {took:?}"
    );

    // Keep-alive: after one answered request, the idle timeout runs again.
    let mut keep = TcpStream::connect(s.addr).await.unwrap();
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (sent, _) = read_to_close(&mut keep).await;
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");

    // A body trickled slower than the body timeout allows gets 408.
    let mut body = TcpStream::connect(s.addr).await.unwrap();
    body.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"user",
    )
    .await
    .unwrap();
    let (sent, _) = read_to_close(&mut body).await;
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(sent.contains(r#""code":"timeout""#), "{sent}");

    // Meanwhile the server answers everyone else.
    let (status, _) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_are_answered_429() {
    let s = TestServer::start_with(config(Protection {
        max_connections_per_addr: 3,
        ..Protection::default()
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(s.addr, [127, 0, 0, 2]).await);
    }
    // Give the server a moment to count them (accept runs on its own task).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = connect_from(s.addr, [127, 0, 0, 2]).await;
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains(r#""code":"rate_limited""#), "{answer}");
    // A WebSocket upgrade from that address is refused the same way.
    let mut req = format!("ws://{}/ws", s.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer x".parse().unwrap());
    let tcp = connect_from(s.addr, [127, 0, 0, 2]).await;
    let refused = tokio_tungstenite::client_async(req, tcp).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429)
        }
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
    // Another address is not concerned.
    let mut other = connect_from(s.addr, [127, 0, 0, 3]).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A place freed is a place to take.
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from(s.addr, [127, 0, 0, 2]).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut again).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_server_cap_are_answered_503() {
    let s = TestServer::start_with(config(Protection {
        max_connections: 2,
        ..Protection::default()
    }))
    .await;
    let _a = connect_from(s.addr, [127, 0, 0, 4]).await;
    let _b = connect_from(s.addr, [127, 0, 0, 5]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = connect_from(s.addr, [127, 0, 0, 6]).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"unavailable""#), "{answer}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_from_other_origins_and_past_the_user_cap_are_refused() {
    let s = TestServer::start_with(config(Protection {
        max_sockets_per_user: 2,
        allowed_origins: vec!["https://app.example".into()],
        ..Protection::default()
    }))
    .await;
    let alice = s.signup("alice").await;
    let upgrade = |origin: Option<&str>| {
        let mut req = format!("ws://{}/ws", s.addr).into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", alice.token).parse().unwrap(),
        );
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        status(upgrade(Some("https://evil.example")).await.map(|_| ())),
        403
    );
    assert_eq!(status(upgrade(Some("null")).await.map(|_| ())), 403);
    // Its own origin, an allowed one, and no origin (not a browser) pass.
    let own = format!("http://{}", s.addr);
    let first = upgrade(Some(&own)).await.expect("same origin");
    let second = upgrade(Some("https://app.example"))
        .await
        .expect("allowed origin");
    // Two sockets is this user's cap.
    assert_eq!(status(upgrade(None).await.map(|_| ())), 429);
    drop(first);
    let deadline = Instant::now() + HANG;
    loop {
        match upgrade(None).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("a closed socket frees its place: {e}"),
        }
    }
    drop(second);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let s = TestServer::start_with(TestServer::config()).await;
    let page = s.http.get(s.url("/")).send().await.unwrap();
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self' ws: wss:",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    let api = s.http.get(s.url("/api/me")).send().await.unwrap();
    assert_eq!(api.status(), 401);
    let h = api.headers();
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    s.stop().await;
}
