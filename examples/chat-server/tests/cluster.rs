//! Several chat-server processes as one service on Redis (`--cluster`):
//! login spreads users over nodes by discovery, presence crosses nodes on
//! the bus, a SIGKILLed node's users go offline and it leaves discovery,
//! its clients log in again and land on a live node; and the nodes carry
//! on across a Redis restart.
//!
//! Each node keeps its own in-memory store (chat-server has no shared store
//! wired yet: `--store postgres://…` answers "not built yet"), so accounts
//! live on node 1, whose API every login goes through, and the tests cover
//! what crosses through Redis: discovery, presence and the bus. Messages,
//! typing and receipts between nodes need a shared store and are covered by
//! chat-core's engine tests over the bus and by these once one is wired.
//!
//! Needs CHAT_TEST_REDIS_URL (under CHAT_TEST_REQUIRE_SERVICES=1 its
//! absence is a failure); the restart test also needs `redis-server`.

mod cluster_harness;

use chat_cluster_redis::testing::{self, PrivateRedis};
use cluster_harness::{HANG, Node, Ws, discovery, live_until, load_of, login, presence_is, signup};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_spread_presence_crosses_nodes_and_a_killed_node_is_forgotten() {
    let Some(redis) = testing::test_url() else {
        return; // test_url printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::start(id, &redis, &prefix)).collect();
    let discovery = discovery(&redis, &prefix).await;
    live_until(&discovery, "the three nodes", |live| live.len() == 3).await;

    let (alice, bob, carol) = (
        signup(&nodes[0], "alice").await,
        signup(&nodes[0], "bob").await,
        signup(&nodes[0], "carol").await,
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
    // Roles by node: node 1 serves the API (the accounts are there), so the
    // node to kill is node 2; its user is the victim, node 1's the watcher.
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
async fn nodes_carry_on_across_a_redis_restart() {
    if testing::test_url().is_none() {
        return; // test_url printed the skip line
    }
    let port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.ready().await;
    let prefix = testing::fresh_prefix();
    let nodes: Vec<Node> = (4..=5)
        .map(|id| Node::start(id, &redis.url(), &prefix))
        .collect();
    let api = &nodes[0];
    let (alice, carol) = (signup(api, "alice").await, signup(api, "carol").await);
    let (alice_token, _) = login(api, &alice).await;
    let (carol_token, _) = login(api, &carol).await;
    let (mut alice_ws, _) = Ws::connect(&nodes[0].ws, &alice_token).await;
    alice_ws
        .send(json!({"type": "presence_subscribe", "id": "w", "user_ids": [carol.id]}))
        .await;
    alice_ws.until(|f| presence_is(f, &carol, "offline")).await;

    redis.kill();
    let redis = PrivateRedis::start(port);
    redis.ready().await;

    // Node 4 subscribed alice's watch before the restart; the bus must hold
    // it again on the new Redis. Carol connects to node 5 until alice hears
    // of it: a connect made before the nodes noticed the restart may fail
    // quietly (it is logged), so each try is a fresh connection.
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let (carol_ws, _) = Ws::connect(&nodes[1].ws, &carol_token).await;
        let mut heard = false;
        while let Some(frame) = alice_ws
            .next_within(std::time::Duration::from_millis(500))
            .await
        {
            if presence_is(&frame, &carol, "online") {
                heard = true;
                break;
            }
        }
        if heard {
            break;
        }
        carol_ws.close().await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice on node 4 never heard of carol on node 5 after the Redis restart"
        );
    }
    // Discovery is back too: both nodes registered again by their heartbeats.
    let discovery = discovery(&redis.url(), &prefix).await;
    live_until(&discovery, "both nodes again", |live| live.len() == 2).await;
}
