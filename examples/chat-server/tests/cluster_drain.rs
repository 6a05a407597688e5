//! A node taken out of service with SIGTERM, under traffic in both
//! directions: it leaves discovery at once (a login hands out the other
//! node), closes its clients with 1012 after answering what it read, and
//! exits by itself well within its grace. Nothing is lost: every message a
//! sender got `sent` for reaches its recipient, a send the node did not
//! answer is sent again on the other node with the same `client_msg_id`
//! and stored once, and messages to the drained node's user arrive live or
//! in the sync on the other node.
//!
//! Needs CHAT_TEST_REDIS_URL and CHAT_TEST_POSTGRES_URL (the shared
//! servers; a fresh prefix and schema).

mod cluster_harness;

use std::collections::{BTreeMap, BTreeSet};

use chat_cluster_redis::testing;
use cluster_harness::{Node, Ws, login, shared_store, signup};
use serde_json::{Value, json};

/// Messages each side has in flight when the node is told to drain.
const IN_FLIGHT: usize = 30;

fn send_frame(to: &str, id: &str) -> Value {
    json!({"type": "send", "id": id, "to": to, "body": id, "client_msg_id": id})
}

fn bodies(frames: &[Value]) -> impl Iterator<Item = String> + '_ {
    frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["message"]["body"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_loses_no_message_and_its_clients_move() {
    let (Some(redis), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let mut leaving = Node::start(1, &redis, &prefix, &store);
    let staying = Node::start(2, &redis, &prefix, &store);
    let alice = signup(&leaving, "alice").await;
    let bob = signup(&staying, "bob").await;
    let (mut a, _) = Ws::connect(&leaving.ws, &alice.token).await;
    let (mut b, _) = Ws::connect(&staying.ws, &bob.token).await;

    // Both fire their sends without waiting, then node 1 is told to drain.
    for i in 0..IN_FLIGHT {
        a.send(send_frame(&bob.id, &format!("a{i}"))).await;
        b.send(send_frame(&alice.id, &format!("b{i}"))).await;
    }
    leaving.sigterm();
    let (frames, close) = a.until_close().await;
    let (code, reason) = close.expect("a close frame, not a broken connection");
    assert_eq!(code, 1012, "service restart: {reason}");

    // The node left discovery before it closed anyone: a login now hands
    // out the other node.
    let (token, chat_url) = login(&staying, &alice).await;
    assert_eq!(chat_url, staying.ws, "logins go to the node that stays");

    let status = leaving.wait_exit().await;
    assert!(status.success(), "the drained node exits cleanly: {status}");

    // What node 1 answered before closing is stored; the rest is sent again
    // on node 2 under the same client_msg_id.
    let answered: BTreeSet<String> = frames
        .iter()
        .filter(|f| f["type"] == "sent")
        .map(|f| f["reply_to"].as_str().unwrap().to_owned())
        .collect();
    let mut alice_got: BTreeSet<String> = bodies(&frames).collect();
    let (mut a2, synced) = Ws::connect(&chat_url, &token).await;
    alice_got.extend(
        synced
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned()),
    );
    for i in 0..IN_FLIGHT {
        let id = format!("a{i}");
        if !answered.contains(&id) {
            a2.send(send_frame(&bob.id, &id)).await;
            let (reply, before) = a2.until(|f| f["reply_to"] == id.as_str()).await;
            assert_eq!(reply["type"], "sent", "resent {id}: {reply}");
            alice_got.extend(bodies(&before));
        }
    }

    // Bob got every one of alice's messages exactly once (a resend of an
    // answered send would show as a second copy), and all his were sent.
    let mut bob_got: BTreeMap<String, usize> = BTreeMap::new();
    let mut bob_sent = 0;
    while bob_got.len() < IN_FLIGHT || bob_sent < IN_FLIGHT {
        let frame = b.next().await;
        match frame["type"].as_str() {
            // Only alice's: a copy of bob's own message is no loss.
            Some("message") if frame["message"]["sender_id"] == alice.id.as_str() => {
                let body = frame["message"]["body"].as_str().unwrap().to_owned();
                *bob_got.entry(body).or_default() += 1;
            }
            Some("sent") => bob_sent += 1,
            _ => {}
        }
    }
    // Anything still queued for bob arrives before the answer to his ping.
    let late: Vec<Value> = b
        .roundtrip("flush")
        .await
        .into_iter()
        .filter(|f| f["message"]["sender_id"] == alice.id.as_str())
        .collect();
    for body in bodies(&late) {
        *bob_got.entry(body).or_default() += 1;
    }
    let twice: Vec<_> = bob_got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert_eq!(bob_got.len(), IN_FLIGHT, "{bob_got:?}");

    // Alice got every one of bob's: live on node 1, in node 2's sync, or
    // live on node 2 (bob's sends may still have been on their way).
    let want: BTreeSet<String> = (0..IN_FLIGHT).map(|i| format!("b{i}")).collect();
    let deadline = tokio::time::Instant::now() + cluster_harness::HANG;
    while !want.is_subset(&alice_got) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(frame) = a2.next_within(left).await else {
            break;
        };
        alice_got.extend(bodies(std::slice::from_ref(&frame)));
    }
    let missing: Vec<_> = (0..IN_FLIGHT)
        .map(|i| format!("b{i}"))
        .filter(|b| !alice_got.contains(b))
        .collect();
    assert!(missing.is_empty(), "never reached alice: {missing:?}");
}
