//! `/readyz` of a clustered node follows its Redis: 200 while presence and
//! discovery answer, 503 naming the cluster part while Redis is down, 200
//! again once a Redis is back on the same address. The store (memory here)
//! answers all along, so the failing part is the cluster's. (The database
//! side of `/readyz` is in the db_restart tests.)
//!
//! Needs CHAT_TEST_REDIS_URL (this machine runs Redis; under
//! CHAT_TEST_REQUIRE_SERVICES=1 its absence is a failure) and `redis-server`
//! for a Redis of the test's own.

mod cluster_harness;

use std::time::Duration;

use chat_cluster_redis::testing::{self, PrivateRedis};
use cluster_harness::{HANG, Node};
use serde_json::{Value, json};

async fn readyz(node: &Node) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("{}/readyz", node.http))
        .timeout(HANG)
        .send()
        .await
        .expect("readyz answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON body"))
}

/// Polls `/readyz` until `want` holds for its answer; fails after [`HANG`].
async fn readyz_until(node: &Node, what: &str, want: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let (status, body) = readyz(node).await;
        if want(status, &body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz never became {what}; last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_cluster_redis() {
    if testing::test_url().is_none() {
        return; // the testing helper printed the skip line
    }
    let port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.ready().await;
    let prefix = testing::fresh_prefix();
    testing::mark_established(&redis.url(), &prefix);
    let node = Node::start(7, &redis.url(), &prefix, "memory");
    assert_eq!(readyz(&node).await, (200, json!({"status": "ready"})));

    redis.kill();
    let body = readyz_until(&node, "503", |status, _| status == 503).await;
    eprintln!("readyz with Redis down: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("presence: ") || message.starts_with("discovery: "),
        "the cluster part is named, not the store: {body}"
    );
    let (status, _) = reqwest::get(format!("{}/healthz", node.http))
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("healthz answers");
    assert_eq!(status, 200, "the process stays up");

    let redis = PrivateRedis::start(port);
    redis.ready().await;
    readyz_until(&node, "200 again", |status, body| {
        status == 200 && *body == json!({"status": "ready"})
    })
    .await;
}
