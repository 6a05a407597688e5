//! `GET /metrics` on a running server: the counters move after a send, the
//! separate `--metrics-listen` address serves the same text, and
//! `--metrics-on-main false` takes it off the main listener.

mod common;

use chat_core::Retention;
use chat_server::Config;
use chat_server::config::Operations;
use common::TestServer;
use serde_json::json;

/// The value of the sample `name{labels}` (the whole line up to the value),
/// or `None` when the text has no such line.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

async fn scrape(http: &reqwest::Client, url: String) -> (u16, String, String) {
    let res = http.get(url).send().await.expect("scrape");
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_after_a_send_and_a_slow_login() {
    let server = TestServer::start("memory", Retention::Forever).await;
    let (alice, bob) = (server.signup("alice").await, server.signup("bob").await);
    let (status, kind, before) = scrape(&server.http, server.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert_eq!(sample(&before, "chat_connections"), Some(0.0));
    assert_eq!(
        sample(&before, r#"chat_messages_stored_total{kind="text"}"#),
        None
    );

    let (mut bob_ws, _) = server.ws(&bob).await;
    let (mut alice_ws, _) = server.ws(&alice).await;
    alice_ws.send_text(&bob.id, "hi bob", "1").await;
    let (message, _) = bob_ws.until("message").await;
    assert_eq!(message["message"]["body"], "hi bob");
    // A wrong password counts as a failed login.
    let (status, _) = server
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "not alice's password"}),
        )
        .await;
    assert_eq!(status, 401);

    let (_, _, after) = scrape(&server.http, server.url("/metrics")).await;
    let want = [
        ("chat_connections", 2.0),
        (r#"chat_messages_stored_total{kind="text"}"#, 1.0),
        (r#"chat_frames_in_total{type="send"}"#, 1.0),
        (r#"chat_frames_out_total{type="sent"}"#, 1.0),
        (r#"chat_frames_out_total{type="message"}"#, 1.0),
        (r#"chat_frames_out_total{type="synced"}"#, 2.0),
        ("chat_sessions_opened_total", 2.0),
        ("chat_deliveries_total", 1.0),
        ("chat_store_append_seconds_count", 1.0),
        ("chat_login_failures_total", 1.0),
        (
            r#"chat_store_calls_total{backend="memory",op="append",outcome="ok"}"#,
            1.0,
        ),
        ("chat_node_lease_state", 1.0),
        ("chat_draining", 0.0),
    ];
    for (series, value) in want {
        assert_eq!(sample(&after, series), Some(value), "{series} in\n{after}");
    }
    for series in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(
            sample(&after, series).is_some_and(|v| v > 0.0),
            "{series} in\n{after}"
        );
    }
    assert!(after.contains(r#"chat_build_info{version=""#), "{after}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_metrics_listener_can_replace_the_main_one() {
    // A free port, released just before the server binds it.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let server = TestServer::start_with(Config {
        ops: Operations {
            metrics_listen: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            metrics_on_main: false,
            ..Operations::default()
        },
        ..TestServer::config()
    })
    .await;
    let (status, _, text) = scrape(&server.http, format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "chat_connections"), Some(0.0), "{text}");
    let (status, _) = server
        .call(reqwest::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(status, 404, "off the main listener");
    server.stop().await;
}
