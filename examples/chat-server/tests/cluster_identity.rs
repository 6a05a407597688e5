//! Node identity in a cluster: two live nodes never share a worker id.
//! Nodes started without `--node-id` claim distinct free ids, a node
//! asking for an id in use refuses to start, a killed node's id is free
//! again once its lease lapses, and two nodes with claimed ids carry a
//! group's concurrent traffic with every message delivered once.
//!
//! Needs CHAT_TEST_REDIS_URL and CHAT_TEST_POSTGRES_URL (under
//! CHAT_TEST_REQUIRE_SERVICES=1 their absence is a failure).

mod cluster_harness;

use std::collections::HashSet;

use chat_cluster_redis::testing;
use chat_core::MessageId;
use cluster_harness::{HANG, Launch, Node, User, Ws, group, login, shared_store, signup};
use serde_json::{Value, json};

fn launch<'a>(
    host: u8,
    id: Option<u16>,
    redis: &'a str,
    prefix: &'a str,
    store: &'a str,
) -> Launch<'a> {
    Launch {
        host,
        id,
        redis,
        prefix,
        store,
        push_webhook: None,
    }
}

/// The worker id inside a message id.
fn worker_of(message_id: &Value) -> u16 {
    MessageId(message_id.as_str().unwrap().parse().unwrap()).worker()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_node_ids_claim_distinct_ids_and_deliver_every_message_once() {
    const PER_SENDER: usize = 100;
    let (Some(redis), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let a = Node::launch(&launch(21, None, &redis, &prefix, &store)).unwrap();
    let b = Node::launch(&launch(22, None, &redis, &prefix, &store)).unwrap();
    assert_ne!(a.id, b.id, "two nodes without --node-id share id {}", a.id);

    // Two senders and two receivers in one group, one of each per node.
    let users = [
        signup(&a, "s1").await,
        signup(&a, "r1").await,
        signup(&b, "s2").await,
        signup(&b, "r2").await,
    ];
    let conversation = group(&a, &users[0], &[&users[1], &users[2], &users[3]]).await;
    let mut sockets = Vec::new();
    for (user, node) in users.iter().zip([&a, &a, &b, &b]) {
        let (token, _) = login(node, user).await;
        sockets.push(Ws::connect(&node.ws, &token).await.0);
    }
    let mut sockets = sockets.into_iter();
    let (s1, r1, s2, r2) = (
        sockets.next().unwrap(),
        sockets.next().unwrap(),
        sockets.next().unwrap(),
        sockets.next().unwrap(),
    );

    // Both senders at once, each on its own node, as fast as they go.
    let send_all = |mut ws: Ws, who: &'static str, conversation: String| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_SENDER {
                let id = format!("{who}-{i}");
                ws.send(
                    json!({"type": "send", "id": id, "conversation_id": conversation,
                               "body": id, "client_msg_id": id}),
                )
                .await;
                let (sent, _) = ws.until(|f| f["reply_to"] == id.as_str()).await;
                assert_eq!(sent["type"], "sent", "{sent}");
                ids.push(sent["message_id"].clone());
            }
            (ws, ids)
        })
    };
    let one = send_all(s1, "s1", conversation.clone());
    let two = send_all(s2, "s2", conversation.clone());
    let (_s1, ids1) = one.await.unwrap();
    let (_s2, ids2) = two.await.unwrap();
    assert!(
        ids1.iter().all(|id| worker_of(id) == a.id),
        "node a mints with its claimed id"
    );
    assert!(
        ids2.iter().all(|id| worker_of(id) == b.id),
        "node b mints with its claimed id"
    );
    let all: HashSet<String> = ids1
        .iter()
        .chain(&ids2)
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 2 * PER_SENDER, "every send got an id of its own");

    // Each receiver gets every message, once.
    for (mut ws, who) in [(r1, "r1"), (r2, "r2")] {
        let mut got = Vec::new();
        while got.len() < 2 * PER_SENDER {
            let frame = ws.next().await;
            if frame["type"] == "message" {
                got.push(frame["message"]["message_id"].as_str().unwrap().to_owned());
            }
        }
        let after = ws.roundtrip(who).await;
        assert!(
            after.iter().all(|f| f["type"] != "message"),
            "{who} got more than {} messages: {after:?}",
            2 * PER_SENDER
        );
        let distinct: HashSet<String> = got.into_iter().collect();
        assert_eq!(distinct, all, "{who} got each message once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_in_use_is_refused_and_a_killed_nodes_id_is_free_after_its_lease() {
    let (Some(redis), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let mut first = Node::launch(&launch(23, None, &redis, &prefix, &store)).unwrap();
    let id = first.id;
    let gone = signup(&first, "gone").await;
    let (token, _) = login(&first, &gone).await;
    let (_gone_ws, _) = Ws::connect(&first.ws, &token).await;

    let refused = match Node::launch(&launch(24, Some(id), &redis, &prefix, &store)) {
        Ok(node) => panic!("a second node got id {id} while node {} holds it", node.id),
        Err(log) => log,
    };
    assert!(
        refused.contains(&format!("node id {id}"))
            && refused.contains("another live node of this cluster holds it"),
        "the refusal must say which id is in use and why: {refused}"
    );
    assert!(
        refused.contains(&first.ws),
        "the refusal names the holder ({}): {refused}",
        first.ws
    );
    assert!(
        refused.contains("(exited: exit status: 1)"),
        "a refused node exits with a failure: {refused}"
    );

    // A crash leaves the claim until its lease lapses; then the id is free.
    first.kill();
    let deadline = tokio::time::Instant::now() + HANG;
    let again = loop {
        match Node::launch(&launch(24, Some(id), &redis, &prefix, &store)) {
            Ok(node) => break node,
            Err(log) => {
                assert!(
                    log.contains("another live node of this cluster holds it"),
                    "while the lease runs the refusal is the id in use: {log}"
                );
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "id {id} never became free after its node was killed"
                );
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    };
    assert_eq!(again.id, id);
    let user: User = signup(&again, "after").await;
    let (token, _) = login(&again, &user).await;
    let (mut ws, _) = Ws::connect(&again.ws, &token).await;
    let (sent, _) = ws.send_to(&gone, "minted under the freed id", "n").await;
    assert_eq!(sent["type"], "sent", "{sent}");
    assert_eq!(worker_of(&sent["message_id"]), id);
    // No other node was left to reap the killed one's users: the node that
    // took its id over counted out what it had left in presence.
    ws.send(json!({"type": "presence_subscribe", "id": "p", "user_ids": [gone.id]}))
        .await;
    let (presence, _) = ws
        .until(|f| f["type"] == "presence" && f["user_id"] == gone.id.as_str())
        .await;
    assert_eq!(presence["status"], "offline", "{presence}");
}
