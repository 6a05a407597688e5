//! The push webhook against a real HTTP listener that records what it gets.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chat_server::Config;
use common::{HANG, TestServer};
use serde_json::Value;
use tokio::sync::mpsc;

/// What the recording webhook shares: where to report posts, and how many came.
type Hook = (mpsc::UnboundedSender<(u16, Value)>, Arc<AtomicUsize>);

/// A webhook on 127.0.0.1:0 that fails the first `fail_first` posts with 500
/// and reports every post it receives (failed or not) on the channel.
async fn webhook(fail_first: usize) -> (String, mpsc::UnboundedReceiver<(u16, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State((tx, seen)): State<Hook>, body: axum::Json<Value>| async move {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let status = if n < fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    let _ = tx.send((status.as_u16(), body.0));
                    status
                },
            ),
        )
        .with_state((tx, seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

async fn next_post(rx: &mut mpsc::UnboundedReceiver<(u16, Value)>) -> (u16, Value) {
    tokio::time::timeout(HANG, rx.recv())
        .await
        .expect("a webhook post within the hang guard")
        .expect("webhook running")
}

async fn server_with_webhook(url: String) -> TestServer {
    TestServer::start_with(Config {
        push_webhook: Some(url),
        ..TestServer::config()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_recipients_are_posted_to_the_webhook() {
    let (url, mut posts) = webhook(0).await;
    let s = server_with_webhook(url).await;
    let alice = s.signup("alice").await;
    let bob = s.signup("bob").await;
    let carol = s.signup("carol").await;
    let group = s.group(&alice, &[&bob, &carol]).await;
    let (_carol_ws, _) = s.ws(&carol).await;
    let (mut a, _) = s.ws(&alice).await;
    a.send(
        serde_json::json!({"type": "send", "id": "1", "conversation_id": group,
        "body": "hello offline bob"}),
    )
    .await;
    let (sent, _) = a.until("sent").await;
    let (status, body) = next_post(&mut posts).await;
    assert_eq!(status, 204);
    // Only bob: alice sent it and carol is online.
    assert_eq!(
        body,
        serde_json::json!({
            "user_id": bob.id,
            "conversation_id": group,
            "message_id": sent["message_id"],
            "sender_id": alice.id,
            "preview": "hello offline bob",
        })
    );
    assert!(body["message_id"].is_string());
    // A second message: again only bob (no post for carol came in between).
    a.send(
        serde_json::json!({"type": "send", "id": "2", "conversation_id": group, "body": "again"}),
    )
    .await;
    a.until("sent").await;
    let (_, body) = next_post(&mut posts).await;
    assert_eq!(body["user_id"], bob.id.as_str());
    assert_eq!(body["preview"], "again");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_retried() {
    let (url, mut posts) = webhook(2).await;
    let s = server_with_webhook(url).await;
    let alice = s.signup("alice").await;
    let bob = s.signup("bob").await;
    let (mut a, _) = s.ws(&alice).await;
    a.send_text(&bob.id, "are you there", "1").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, body) = next_post(&mut posts).await;
        assert_eq!(body["user_id"], bob.id.as_str());
        assert_eq!(body["preview"], "are you there");
        statuses.push(status);
    }
    assert_eq!(statuses, [500, 500, 204]);
    // /metrics counts each try's outcome (the last one once the server
    // read the webhook's answer).
    let want = [
        r#"chat_push_webhook_total{outcome="retried"} 2"#,
        r#"chat_push_webhook_total{outcome="delivered"} 1"#,
    ];
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let text = s
            .http
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if want.iter().all(|line| text.lines().any(|l| l == *line)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{want:?} not in\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.stop().await;
}

/// A webhook that holds the first post until `release` is notified (the
/// others answer 204 at once), and reports each post's preview when it
/// arrives.
async fn held_webhook(
    release: Arc<tokio::sync::Notify>,
) -> (String, mpsc::UnboundedReceiver<String>) {
    type Held = (
        mpsc::UnboundedSender<String>,
        Arc<tokio::sync::Notify>,
        Arc<AtomicUsize>,
    );
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State((tx, release, seen)): State<Held>, body: axum::Json<Value>| async move {
                    let _ = tx.send(body.0["preview"].as_str().unwrap_or("").to_owned());
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        release.notified().await;
                    }
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state((tx, release, Arc::new(AtomicUsize::new(0))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn notification(preview: &str) -> chat_core::push::PushNotification {
    chat_core::push::PushNotification {
        user_id: "bob".into(),
        conversation_id: "g:push".into(),
        message_id: chat_core::MessageId(1),
        sender_id: "alice".into(),
        preview: preview.to_owned(),
    }
}

/// A webhook that always fails is tried `attempts` times, then given up:
/// no further post comes, however long one waits past the backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_gives_up_after_its_attempts() {
    use chat_core::push::Notifier;
    use chat_server::push::{WebhookNotifier, WebhookOptions};
    let (url, mut posts) = webhook(usize::MAX).await;
    let notifier = WebhookNotifier::start(
        url,
        WebhookOptions {
            attempts: 3,
            backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_millis(20),
            ..WebhookOptions::default()
        },
    );
    notifier.notify(notification("never")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(next_post(&mut posts).await.0, 500);
    }
    // The backoff is at most 20 ms: a fourth try would come well within
    // this (a loaded machine only delays it, it cannot make one appear).
    let fourth = tokio::time::timeout(std::time::Duration::from_millis(500), posts.recv()).await;
    assert!(
        fourth.is_err(),
        "a fourth post after 3 attempts: {fourth:?}"
    );
}

/// A webhook that hangs never slows the sender: `notify` returns while the
/// webhook holds a post, and a full queue drops the newest notification
/// (those already waiting keep their place and are posted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_never_slows_notify_and_a_full_queue_drops_the_newest() {
    use chat_core::push::Notifier;
    use chat_server::push::{WebhookNotifier, WebhookOptions};
    let release = Arc::new(tokio::sync::Notify::new());
    let (url, mut posts) = held_webhook(release.clone()).await;
    let notifier = WebhookNotifier::start(
        url,
        WebhookOptions {
            queue: 2,
            workers: 1,
            attempts: 1,
            ..WebhookOptions::default()
        },
    );
    // The one worker takes the first and hangs in the webhook.
    notifier.notify(notification("first")).await.unwrap();
    let first = tokio::time::timeout(HANG, posts.recv())
        .await
        .expect("first post");
    assert_eq!(first.as_deref(), Some("first"));
    // Two fill the queue; the third finds it full. The webhook holds its
    // post until released below, so a notify that waited for it would
    // never return: the hang guard fails the test then.
    tokio::time::timeout(HANG, async {
        for preview in ["second", "third", "dropped"] {
            notifier.notify(notification(preview)).await.unwrap();
        }
    })
    .await
    .expect("notify returned while the webhook held a post");
    release.notify_one();
    let mut rest = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(HANG, posts.recv())
            .await
            .expect("queued post");
        rest.push(next.expect("webhook running"));
    }
    assert_eq!(rest, ["second", "third"], "the queued ones, in order");
    // The worker is idle now: a post of the dropped one would come at once.
    let more = tokio::time::timeout(std::time::Duration::from_secs(1), posts.recv()).await;
    assert!(
        more.is_err(),
        "the dropped notification was posted: {more:?}"
    );
}
