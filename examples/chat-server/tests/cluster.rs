//! Several chat-server processes as one service: Redis (`--cluster`) for
//! the bus, presence and discovery, one PostgreSQL schema (`--store`) for
//! accounts, conversations and messages. Login spreads users over nodes by
//! discovery; messages, typing, receipts and presence cross nodes on the
//! bus; a SIGKILLed node's users go offline, it leaves discovery, its
//! clients log in again, land on a live node and sync everything they
//! missed. Node ids: cluster_identity.rs; Redis restarted or flushed under
//! the nodes: cluster_redis_loss.rs.
//!
//! Needs CHAT_TEST_REDIS_URL and CHAT_TEST_POSTGRES_URL (under
//! CHAT_TEST_REQUIRE_SERVICES=1 their absence is a failure).

mod cluster_harness;

use chat_cluster_redis::testing;
use cluster_harness::{
    Node, User, Ws, discovery, live_until, load_of, login, presence_is, shared_store, signup,
};
use serde_json::Value;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_spread_presence_crosses_nodes_and_a_killed_node_is_forgotten() {
    let (Some(redis), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node::start(id, &redis, &prefix, &store))
        .collect();
    let discovery = discovery(&redis, &prefix).await;
    live_until(&discovery, "the three nodes", |live| live.len() == 3).await;

    // One store: an account made through any node's API logs in through any other.
    let (alice, bob, carol) = (
        signup(&nodes[0], "alice").await,
        signup(&nodes[1], "bob").await,
        signup(&nodes[2], "carol").await,
    );

    // Discovery picks the least loaded node: once a user's connection shows
    // in its node's load, the next login goes to an empty node.
    let mut sockets = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for user in [&alice, &bob, &carol] {
        let (token, chat_url) = login(&nodes[0], user).await;
        assert!(
            !used.contains(&chat_url),
            "{} was sent to {chat_url}, which already has a user: {used:?}",
            user.name
        );
        let node = nodes
            .iter()
            .find(|n| n.ws == chat_url)
            .unwrap_or_else(|| panic!("chat_url {chat_url} is no node's"));
        let (ws, _) = Ws::connect(&chat_url, &token).await;
        live_until(&discovery, "the new connection in the load", |live| {
            load_of(live, node) == Some(1)
        })
        .await;
        used.push(chat_url);
        sockets.push(ws);
    }
    // Roles by node: node 1 serves the API, so the node to kill is node 2;
    // its user is the victim, node 1's the watcher.
    let on = |i: usize| used.iter().position(|url| *url == nodes[i].ws).unwrap();
    let users = [alice.clone(), bob.clone(), carol.clone()];
    let (w, v, o) = (on(0), on(1), on(2));
    let mut sockets: Vec<Option<Ws>> = sockets.into_iter().map(Some).collect();
    let (watcher, victim, other) = (&users[w], &users[v], &users[o]);
    let mut watcher_ws = sockets[w].take().unwrap();
    let victim_ws = sockets[v].take().unwrap();
    let mut other_ws = sockets[o].take().unwrap();

    // Presence is shared: the watcher sees both others online, on other nodes.
    watcher_ws
        .send(json!({"type": "presence_subscribe", "id": "w1", "user_ids": [victim.id, other.id]}))
        .await;
    watcher_ws.until(|f| presence_is(f, victim, "online")).await;
    watcher_ws.until(|f| presence_is(f, other, "online")).await;
    // A watch from node 3, and a close on node 3 that crosses the bus.
    other_ws
        .send(json!({"type": "presence_subscribe", "id": "w2", "user_ids": [watcher.id]}))
        .await;
    other_ws.until(|f| presence_is(f, watcher, "online")).await;
    other_ws.close().await;
    watcher_ws.until(|f| presence_is(f, other, "offline")).await;

    // SIGKILL node 2: no disconnect reaches presence; the other nodes reap
    // it when its heartbeat expires, and the watcher hears the victim left.
    nodes[1].kill();
    drop(victim_ws);
    let (offline, _) = watcher_ws
        .until(|f| presence_is(f, victim, "offline"))
        .await;
    assert!(
        offline["last_seen"].is_i64(),
        "a reaped user has last_seen: {offline}"
    );
    let dead = nodes[1].name();
    let live = live_until(&discovery, "the dead node gone", |live| {
        live.len() == 2 && live.iter().all(|n| n.id.as_str() != dead)
    })
    .await;

    // The victim logs in again and lands on a live node; the watcher sees it back.
    let (token, chat_url) = login(&nodes[0], victim).await;
    assert!(
        live.iter().any(|n| n.public_url == chat_url),
        "{} must land on a live node, got {chat_url}; live {live:?}",
        victim.name
    );
    let (_victim_again, _) = Ws::connect(&chat_url, &token).await;
    watcher_ws.until(|f| presence_is(f, victim, "online")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_typing_and_receipts_cross_nodes_and_a_killed_nodes_user_misses_nothing() {
    let (Some(redis), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let mut nodes: Vec<Node> = (6..=8)
        .map(|id| Node::start(id, &redis, &prefix, &store))
        .collect();
    let discovery = discovery(&redis, &prefix).await;
    live_until(&discovery, "the three nodes", |live| live.len() == 3).await;
    let users = [
        signup(&nodes[0], "alice").await,
        signup(&nodes[1], "bob").await,
        signup(&nodes[2], "carol").await,
    ];
    let (alice, bob) = (&users[0], &users[1]);
    let mut placed = spread(&nodes, &discovery, &users).await.into_iter();
    let (a_node, mut a) = placed.next().unwrap();
    let (b_node, mut b) = placed.next().unwrap();
    let (_, mut c) = placed.next().unwrap();

    // Presence from bob's node reaches alice's.
    a.send(json!({"type": "presence_subscribe", "id": "p", "user_ids": [bob.id]}))
        .await;
    a.until(|f| presence_is(f, bob, "online")).await;

    // A message from alice's node reaches bob's live.
    let (sent, _) = a.send_to(bob, "live", "m0").await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let conversation = sent["conversation_id"].clone();
    let (got, _) = b.until(|f| f["type"] == "message").await;
    assert_eq!(got["message"]["message_id"], sent["message_id"]);
    assert_eq!(got["message"]["sender_id"], alice.id.as_str());
    assert_eq!(got["message"]["body"], "live");

    // Typing, delivered and read go back from bob's node to alice's.
    b.send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let (typing, _) = a.until(|f| f["type"] == "typing").await;
    assert_eq!(typing["user_id"], bob.id.as_str());
    assert_eq!(typing["conversation_id"], conversation);
    for (kind, status) in [("ack", "delivered"), ("read", "read")] {
        b.send(json!({"type": kind, "conversation_id": conversation,
                      "message_id": sent["message_id"]}))
            .await;
        let (receipt, _) = a
            .until(|f| f["type"] == "receipt" && f["status"] == status)
            .await;
        assert_eq!(receipt["user_id"], bob.id.as_str(), "{receipt}");
        assert_eq!(receipt["message_id"], sent["message_id"], "{receipt}");
    }
    // Carol, on the third node, is in none of it: her node was sent
    // nothing (a weak check: it sees only what reached her socket).
    let before = c.roundtrip("c").await;
    assert!(before.is_empty(), "carol's socket got {before:?}");

    // SIGKILL bob's node while alice keeps sending: every send is stored.
    let dead = nodes[b_node].name();
    nodes[b_node].kill();
    drop(b);
    let mut missed = Vec::new();
    let mut seen = Vec::new();
    for i in 1..=3 {
        let (sent, before) = a
            .send_to(bob, &format!("missed {i}"), &format!("m{i}"))
            .await;
        assert_eq!(
            sent["type"], "sent",
            "a send while bob's node is dead: {sent}"
        );
        missed.push(sent["message_id"].clone());
        seen.extend(before);
    }
    // Bob turns offline once the other nodes reap his node.
    let offline = match seen.into_iter().find(|f| presence_is(f, bob, "offline")) {
        Some(frame) => frame,
        None => a.until(|f| presence_is(f, bob, "offline")).await.0,
    };
    assert!(offline["last_seen"].is_i64(), "{offline}");
    let live = live_until(&discovery, "the dead node gone", |live| {
        live.len() == 2 && live.iter().all(|n| n.id.as_str() != dead)
    })
    .await;
    for i in 4..=6 {
        let (sent, _) = a
            .send_to(bob, &format!("missed {i}"), &format!("m{i}"))
            .await;
        assert_eq!(sent["type"], "sent", "a send while bob is offline: {sent}");
        missed.push(sent["message_id"].clone());
    }

    // Bob logs in again, lands on a live node, and the sync hands him every
    // message he missed, in order, and not the one he acked.
    let (token, chat_url) = login(&nodes[a_node], bob).await;
    assert_ne!(chat_url, nodes[b_node].ws, "bob must leave the dead node");
    assert!(
        live.iter().any(|n| n.public_url == chat_url),
        "bob must land on a live node, got {chat_url}; live {live:?}"
    );
    let (mut b, synced) = Ws::connect(&chat_url, &token).await;
    let ids: Vec<&Value> = synced.iter().map(|m| &m["message_id"]).collect();
    assert_eq!(ids, missed.iter().collect::<Vec<_>>(), "{synced:?}");
    let bodies: Vec<&str> = synced.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        (1..=6).map(|i| format!("missed {i}")).collect::<Vec<_>>()
    );
    a.until(|f| presence_is(f, bob, "online")).await;

    // And live delivery to his new node works again.
    let (sent, _) = a.send_to(bob, "back", "m7").await;
    let (got, _) = b.until(|f| f["type"] == "message").await;
    assert_eq!(got["message"]["message_id"], sent["message_id"]);
    let before = c.roundtrip("c2").await;
    assert!(before.is_empty(), "carol's socket got {before:?}");
}

/// Logs `users` in one after another (through the first node's API) and
/// connects each to its chat_url; each next login waits until discovery
/// shows the last connection in its node's load, so least-loaded picking
/// puts every user on a node of its own. Returns, in `users`' order, the
/// index in `nodes` of each user's node and its socket.
async fn spread(
    nodes: &[Node],
    discovery: &impl chat_core::cluster::Discovery,
    users: &[User],
) -> Vec<(usize, Ws)> {
    let mut placed: Vec<(usize, Ws)> = Vec::new();
    for user in users {
        let (token, chat_url) = login(&nodes[0], user).await;
        let node = nodes
            .iter()
            .position(|n| n.ws == chat_url)
            .unwrap_or_else(|| panic!("chat_url {chat_url} is no node's"));
        assert!(
            placed.iter().all(|(n, _)| *n != node),
            "{} was sent to {chat_url}, which already has a user",
            user.name
        );
        let (ws, _) = Ws::connect(&chat_url, &token).await;
        live_until(discovery, "the new connection in the load", |live| {
            load_of(live, &nodes[node]) == Some(1)
        })
        .await;
        placed.push((node, ws));
    }
    placed
}
