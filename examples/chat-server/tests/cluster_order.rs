//! One order per conversation across nodes (docs/cluster.md): three
//! chat-server processes on one PostgreSQL schema and one Redis, a sender
//! and a receiver on every node, all in one group, everyone sending at once.
//! Every receiver gets every message exactly once and in ascending id order,
//! in both retention modes; with a node SIGKILLed mid-run, nothing is lost
//! and each connection still sees ascending ids (its client reconnects to a
//! live node and syncs). Receivers ack as they go (cumulative acks), so under
//! until_delivered an ack that ran ahead of a message in flight would delete
//! it and the test would miss it.
//!
//! Needs CHAT_TEST_REDIS_URL and CHAT_TEST_POSTGRES_URL (under
//! CHAT_TEST_REQUIRE_SERVICES=1 their absence is a failure).

mod cluster_harness;

use std::collections::BTreeSet;
use std::time::Duration;

use chat_cluster_redis::testing;
use cluster_harness::{HANG, Launch, Node, User, Ws, group, shared_store, signup};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Messages each sender sends.
const PER_SENDER: usize = 120;
/// Pause between two sends of one sender: 40 a second, under the
/// per-session rate limit, three senders at once into one group.
const PACE: Duration = Duration::from_millis(25);

fn launch<'a>(
    host: u8,
    redis: &'a str,
    prefix: &'a str,
    store: &'a str,
    retention: &'a str,
) -> Launch<'a> {
    Launch {
        host,
        id: None,
        redis,
        prefix,
        store,
        push_webhook: None,
        retention: Some(retention),
    }
}

fn id_of(message: &Value) -> u64 {
    message["message_id"].as_str().unwrap().parse().unwrap()
}

/// What one receiver saw: each connection's message ids, in arrival order.
type Seen = Vec<Vec<u64>>;

/// Reads `c`'s messages until it has `want` distinct ones, acking each; on a
/// dropped connection (its node killed) it reconnects to `fallback`, whose
/// sync hands over what it had not acked.
async fn receive(mut ws: Ws, token: String, fallback: String, c: String, want: usize) -> Seen {
    let mut seen: Seen = vec![Vec::new()];
    let mut distinct = BTreeSet::new();
    while distinct.len() < want {
        let frame = match tokio::time::timeout(HANG, ws.next_or_closed()).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => {
                // The node went away: reconnect elsewhere; the sync comes first.
                let (again, synced) = Ws::connect(&fallback, &token).await;
                ws = again;
                seen.push(Vec::new());
                for m in synced.iter().filter(|m| m["conversation_id"] == c.as_str()) {
                    let id = id_of(m);
                    seen.last_mut().unwrap().push(id);
                    distinct.insert(id);
                }
                continue;
            }
        };
        if frame["type"] != "message" || frame["message"]["conversation_id"] != c.as_str() {
            continue;
        }
        let id = id_of(&frame["message"]);
        seen.last_mut().unwrap().push(id);
        distinct.insert(id);
        ws.send(json!({"type":"ack","conversation_id":c,"message_id":id.to_string()}))
            .await;
    }
    seen
}

/// Sends `PER_SENDER` messages at `PACE`, each with its own client_msg_id;
/// when the node is gone, reconnects to `fallback` and sends again every
/// message not yet answered (a retry with the same key stores nothing new).
/// Returns the ids of everything it sent.
async fn send(mut ws: Ws, token: String, fallback: String, c: String, tag: String) -> Vec<u64> {
    let mut answered: Vec<Option<u64>> = vec![None; PER_SENDER];
    let mut next = 0;
    let mut moved = false;
    while answered.iter().any(Option::is_none) {
        if next < PER_SENDER {
            ws.send(
                json!({"type":"send","id":next.to_string(),"conversation_id":c,
                "body":format!("{tag}-{next}"),"client_msg_id":format!("{tag}-{next}")}),
            )
            .await;
            next += 1;
        }
        // Read what came back meanwhile.
        let wait = if next < PER_SENDER {
            PACE
        } else {
            Duration::from_millis(200)
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = match tokio::time::timeout(left, ws.next_or_closed()).await {
                Err(_) => break,
                Ok(Some(f)) => f,
                Ok(None) => {
                    assert!(!moved, "{tag}: lost a second node");
                    moved = true;
                    let (again, _) = Ws::connect(&fallback, &token).await;
                    ws = again;
                    // Every send not answered goes again, same key.
                    for (i, a) in answered.iter().enumerate().take(next) {
                        if a.is_none() {
                            ws.send(json!({"type":"send","id":i.to_string(),"conversation_id":c,
                                "body":format!("{tag}-{i}"),"client_msg_id":format!("{tag}-{i}")}))
                                .await;
                        }
                    }
                    break;
                }
            };
            match frame["type"].as_str() {
                Some("sent") => {
                    let i: usize = frame["reply_to"].as_str().unwrap().parse().unwrap();
                    answered[i] = Some(id_of(&frame));
                }
                Some("error") => {
                    // Not stored (unavailable, rate limited): send it again.
                    let i: usize = frame["reply_to"].as_str().unwrap().parse().unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    ws.send(json!({"type":"send","id":i.to_string(),"conversation_id":c,
                        "body":format!("{tag}-{i}"),"client_msg_id":format!("{tag}-{i}")}))
                        .await;
                }
                _ => {}
            }
        }
    }
    answered.into_iter().map(Option::unwrap).collect()
}

/// Checks one receiver: each connection ascending, every message once in
/// all (a message may come again on the next connection, as sync resends
/// what was not acked), none missing.
fn check(name: &str, seen: &Seen, all: &BTreeSet<u64>) {
    for (i, ids) in seen.iter().enumerate() {
        for w in ids.windows(2) {
            assert!(
                w[0] < w[1],
                "{name}, connection {i}: {} came after {}",
                w[1],
                w[0]
            );
        }
    }
    let got: BTreeSet<u64> = seen.iter().flatten().copied().collect();
    let missing: Vec<&u64> = all.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{name} never got {} messages: {missing:?}",
        missing.len()
    );
    let extra: Vec<&u64> = got.difference(all).collect();
    assert!(
        extra.is_empty(),
        "{name} got messages nobody sent: {extra:?}"
    );
    if seen.len() == 1 {
        assert_eq!(
            seen[0].len(),
            all.len(),
            "{name}: a message came twice on one connection"
        );
    }
}

async fn run(retention: &str, kill_one: bool) {
    let (Some(redis), Some(store)) = (testing::test_url(), shared_store().await) else {
        return; // the testing helpers printed the skip line
    };
    let prefix = testing::fresh_prefix();
    let mut nodes: Vec<Node> = [41, 42, 43]
        .into_iter()
        .map(|host| Node::launch(&launch(host, &redis, &prefix, &store, retention)).unwrap())
        .collect();
    let mut senders: Vec<User> = Vec::new();
    let mut receivers: Vec<User> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        senders.push(signup(node, &format!("s{i}")).await);
        receivers.push(signup(node, &format!("r{i}")).await);
    }
    let others: Vec<&User> = senders[1..].iter().chain(&receivers).collect();
    let c = group(&nodes[0], &senders[0], &others).await;

    // Receivers first, so that they get every message live.
    let mut readers: Vec<JoinHandle<Seen>> = Vec::new();
    for (i, r) in receivers.iter().enumerate() {
        let (ws, _) = Ws::connect(&nodes[i].ws, &r.token).await;
        let fallback = nodes[(i + 1) % 3].ws.clone();
        readers.push(tokio::spawn(receive(
            ws,
            r.token.clone(),
            fallback,
            c.clone(),
            PER_SENDER * 3,
        )));
    }
    let mut writers: Vec<JoinHandle<Vec<u64>>> = Vec::new();
    for (i, s) in senders.iter().enumerate() {
        let (ws, _) = Ws::connect(&nodes[i].ws, &s.token).await;
        let fallback = nodes[(i + 1) % 3].ws.clone();
        writers.push(tokio::spawn(send(
            ws,
            s.token.clone(),
            fallback,
            c.clone(),
            format!("s{i}"),
        )));
    }
    if kill_one {
        // Mid-run: the third node dies with its sender and receiver on it.
        tokio::time::sleep(PACE * (PER_SENDER as u32) / 2).await;
        nodes[2].kill();
    }
    let mut all = BTreeSet::new();
    for w in writers {
        let ids = tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .expect("senders finish")
            .unwrap();
        assert_eq!(ids.len(), PER_SENDER);
        all.extend(ids);
    }
    assert_eq!(all.len(), PER_SENDER * 3, "every send got its own id");
    for (i, r) in readers.into_iter().enumerate() {
        let seen = tokio::time::timeout(Duration::from_secs(120), r)
            .await
            .expect("receivers finish")
            .unwrap();
        check(&format!("r{i} ({retention})"), &seen, &all);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn senders_on_three_nodes_give_every_receiver_one_order_forever() {
    run("forever", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn senders_on_three_nodes_give_every_receiver_one_order_until_delivered() {
    run("until_delivered", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_run_loses_nothing_and_keeps_each_connection_in_order() {
    run("until_delivered", true).await;
}
