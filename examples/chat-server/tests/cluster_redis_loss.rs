//! The cluster when Redis loses its data: two nodes on a private Redis,
//! users connected to both, Redis restarted empty and later flushed. During
//! the outage same-node chat goes on and cross-node sends are stored; after
//! each loss the nodes rebuild presence and routing by themselves, so live
//! delivery, typing, receipts and presence cross nodes again with nobody
//! reconnecting, and nobody online is ever pushed.
//!
//! The test prints how long after Redis accepted connections again (or
//! after the FLUSHALL) the first cross-node message arrived and presence
//! was right again: a measurement, not a threshold.
//!
//! Needs CHAT_TEST_REDIS_URL (which says Redis tests are wanted), the
//! `redis-server` binary, and CHAT_TEST_POSTGRES_URL.

mod cluster_harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_cluster_redis::testing::{self, PrivateRedis};
use cluster_harness::{
    HANG, Launch, Node, User, Ws, cross_node_round, discovery, group, live_until, login,
    presence_is, shared_store, signup, webhook,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// Sends a probe into `team` from `from` every 100 ms until `to` receives
/// one; returns how long after `since` that was, and the number of probes
/// sent (each is a group message, pushed to offline members). A probe that
/// arrives proves `to`'s node subscribed again: one published before that
/// comes with the sync that follows its resubscription.
async fn first_delivery(
    from: &mut Ws,
    to: &mut Ws,
    team: &str,
    tag: &str,
    since: Instant,
) -> (Duration, usize) {
    let deadline = tokio::time::Instant::now() + HANG;
    let mut sent = 0;
    loop {
        let id = format!("{tag}-probe-{sent}");
        from.send(json!({"type": "send", "id": id, "conversation_id": team,
                         "body": id, "client_msg_id": id}))
            .await;
        let (answer, _) = from.until(|f| f["reply_to"] == id.as_str()).await;
        assert_eq!(answer["type"], "sent", "{answer}");
        sent += 1;
        let wait = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Some(frame) = to
            .next_within(wait.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            let body = frame["message"]["body"].as_str().unwrap_or_default();
            if frame["type"] == "message" && body.starts_with(&format!("{tag}-probe-")) {
                return (since.elapsed(), sent);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tag}: no message crossed nodes again"
        );
    }
}

/// Asks for `user`'s presence from `watcher` until it is online; returns
/// how long after `since` that was.
async fn until_online(watcher: &mut Ws, user: &User, tag: &str, since: Instant) -> Duration {
    let deadline = tokio::time::Instant::now() + HANG;
    for n in 0.. {
        watcher
            .send(
                json!({"type": "presence_subscribe", "id": format!("{tag}-{n}"),
                         "user_ids": [user.id]}),
            )
            .await;
        let (frame, _) = watcher
            .until(|f| f["type"] == "presence" && f["user_id"] == user.id.as_str())
            .await;
        if presence_is(&frame, user, "online") {
            return since.elapsed();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tag}: {} never showed online again",
            user.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!("the loop returns or fails")
}

/// Reads webhook posts until `user` got `count` of them; returns every post
/// by recipient.
async fn posts_until(
    posts: &mut UnboundedReceiver<Value>,
    seen: &mut HashMap<String, Vec<Value>>,
    user: &User,
    count: usize,
) {
    while seen.get(&user.id).map_or(0, Vec::len) < count {
        let post = tokio::time::timeout(HANG, posts.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} got {} of {count} pushes: {seen:?}",
                    user.name,
                    seen.get(&user.id).map_or(0, Vec::len)
                )
            })
            .expect("the webhook runs");
        let to = post["user_id"].as_str().unwrap().to_owned();
        seen.entry(to).or_default().push(post);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_and_a_flushall_the_nodes_heal_without_reconnecting() {
    let (Some(_), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.ready().await;
    let url = redis.url();
    let prefix = testing::fresh_prefix();
    testing::mark_established(&url, &prefix);
    let (hook, mut posts) = webhook().await;
    let launch = |host| Launch {
        host,
        id: None,
        redis: &url,
        prefix: &prefix,
        store: &store,
        push_webhook: Some(&hook),
    };
    let (a, b) = (
        Node::launch(&launch(31)).unwrap(),
        Node::launch(&launch(32)).unwrap(),
    );

    // x and y on node a, z on node b; w never connects.
    let (x, y, z, w) = (
        signup(&a, "x").await,
        signup(&a, "y").await,
        signup(&b, "z").await,
        signup(&a, "w").await,
    );
    let team = group(&a, &x, &[&y, &z, &w]).await;
    let mut ws = Vec::new();
    for (user, node) in [(&x, &a), (&y, &a), (&z, &b)] {
        let (token, _) = login(node, user).await;
        ws.push(Ws::connect(&node.ws, &token).await.0);
    }
    let (mut xs, mut ys, mut zs) = {
        let mut it = ws.into_iter();
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    until_online(&mut xs, &z, "x-watch", Instant::now()).await;
    until_online(&mut zs, &x, "z-watch", Instant::now()).await;
    cross_node_round(&mut xs, &x, &mut zs, &z, "before").await;
    let mut group_messages = 0;

    // Redis restarts empty. Meanwhile users of one node still chat, and a
    // send across nodes is stored; it reaches z once node b's bus is back.
    redis.kill();
    let (sent, _) = xs.send_to(&y, "no redis needed", "outage-1").await;
    assert_eq!(
        sent["type"], "sent",
        "a same-node send without Redis: {sent}"
    );
    ys.until(|f| f["message"]["message_id"] == sent["message_id"])
        .await;
    let (sent, _) = xs.send_to(&z, "across the outage", "outage-2").await;
    assert_eq!(
        sent["type"], "sent",
        "a cross-node send without Redis: {sent}"
    );
    let redis = PrivateRedis::start(port);
    redis.ready().await;
    let back = Instant::now();
    zs.until(|f| f["message"]["message_id"] == sent["message_id"])
        .await;
    let (to_b, probes) = first_delivery(&mut xs, &mut zs, &team, "restart-ab", back).await;
    group_messages += probes;
    let (to_a, probes) = first_delivery(&mut zs, &mut xs, &team, "restart-ba", back).await;
    group_messages += probes;
    let presence = until_online(&mut ys, &z, "restart", back).await;
    eprintln!(
        "MEASURED restart: cross-node delivery back {to_b:?} (a to b) and {to_a:?} (b to a), \
         z online again {presence:?}, after Redis accepted connections"
    );
    cross_node_round(&mut xs, &x, &mut zs, &z, "after-restart").await;
    cross_node_round(&mut zs, &z, &mut ys, &y, "after-restart-back").await;
    // Discovery is back too: both nodes registered again by their heartbeats.
    let nodes = discovery(&url, &prefix).await;
    live_until(&nodes, "both nodes after the restart", |live| {
        live.len() == 2
    })
    .await;

    // FLUSHALL, with no visible disconnect.
    redis.flushall().await;
    let flushed = Instant::now();
    let (to_b, probes) = first_delivery(&mut xs, &mut zs, &team, "flush-ab", flushed).await;
    group_messages += probes;
    let (to_a, probes) = first_delivery(&mut zs, &mut xs, &team, "flush-ba", flushed).await;
    group_messages += probes;
    let presence = until_online(&mut ys, &z, "flush", flushed).await;
    eprintln!(
        "MEASURED flushall: cross-node delivery {to_b:?} (a to b) and {to_a:?} (b to a), \
         z online again {presence:?}, after the FLUSHALL"
    );
    cross_node_round(&mut xs, &x, &mut zs, &z, "after-flush").await;
    cross_node_round(&mut zs, &z, &mut ys, &y, "after-flush-back").await;
    live_until(&nodes, "both nodes after the flush", |live| live.len() == 2).await;

    // Presence changes cross nodes again: z leaves and comes back.
    xs.send(json!({"type": "presence_subscribe", "id": "last", "user_ids": [z.id]}))
        .await;
    xs.until(|f| presence_is(f, &z, "online")).await;
    zs.close().await;
    xs.until(|f| presence_is(f, &z, "offline")).await;

    // w, offline throughout, was pushed every group message (some only
    // once presence was sure again); nobody connected ever was. A last
    // message to w comes after every other push was queued.
    let mut seen = HashMap::new();
    posts_until(&mut posts, &mut seen, &w, group_messages).await;
    let (sent, _) = xs.send_to(&w, "last", "last").await;
    posts_until(&mut posts, &mut seen, &w, group_messages + 1).await;
    assert_eq!(
        seen[&w.id].last().unwrap()["message_id"],
        sent["message_id"],
        "the last push is the last message"
    );
    let others: Vec<&Value> = seen
        .iter()
        .filter(|(u, _)| **u != w.id)
        .flat_map(|(_, p)| p)
        .collect();
    assert!(
        others.is_empty(),
        "connected users were pushed: {others:?} (x {}, y {}, z {})",
        x.id,
        y.id,
        z.id
    );
}
