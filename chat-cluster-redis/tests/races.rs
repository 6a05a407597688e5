//! Several nodes acting on one user at once: the answers that the engine
//! turns into presence frames (went online, went offline, reaped) must be
//! exact, each reported once.

use std::sync::Arc;

use chat_cluster_redis::{RedisPresence, testing};
use chat_core::cluster::PresenceStore;
use chat_core::model::{NodeId, UserId, now_millis};
use futures::future::join_all;

const NODES: usize = 8;

async fn presence() -> Arc<RedisPresence> {
    match testing::fresh_cluster().await {
        Some(cluster) => Arc::new(cluster.presence()),
        None => std::process::exit(0),
    }
}

fn node(n: usize) -> NodeId {
    NodeId::from(format!("node-{n}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_connects_and_disconnects_report_each_step_once() {
    let store = presence().await;
    for round in 0..20 {
        let user = UserId::from(format!("u{round}"));
        let t = now_millis();
        let connects = (0..NODES).map(|n| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { store.connect(&user, &node(n), t).await.unwrap() })
        });
        let online = join_all(connects)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(
            online, 1,
            "exactly one connect must report the step to online"
        );
        let disconnects = (0..NODES).map(|n| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { store.disconnect(&user, &node(n), t + 1).await.unwrap() })
        });
        let offline = join_all(disconnects)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(
            offline, 1,
            "exactly one disconnect must report the step to offline"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reaps_report_each_user_once() {
    // More than one reap chunk (500 users per script call): racing
    // reapers take different chunks of the dead node.
    const USERS: usize = 1_200;
    let store = presence().await;
    let (dead, live) = (node(0), node(1));
    let t = now_millis();
    store.heartbeat(&dead, t, 1_000).await.unwrap();
    store.heartbeat(&live, t, 1_000_000).await.unwrap();
    for u in 0..USERS {
        let user = UserId::from(format!("u{u}"));
        store.connect(&user, &dead, t).await.unwrap();
        if u % 2 == 0 {
            // Twice on the dead node: the count must not matter to reap.
            store.connect(&user, &dead, t).await.unwrap();
        }
    }
    let survivor = UserId::from("survivor");
    store.connect(&survivor, &dead, t).await.unwrap();
    store.connect(&survivor, &live, t).await.unwrap();

    let reaps = (0..NODES).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.reap(t + 2_000).await.unwrap() })
    });
    let mut gone: Vec<String> = join_all(reaps)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .map(|p| {
            assert_eq!(
                p.last_seen,
                Some(t),
                "last_seen is the dead node's last beat"
            );
            p.user_id.to_string()
        })
        .collect();
    gone.sort();
    let mut want: Vec<String> = (0..USERS).map(|u| format!("u{u}")).collect();
    want.sort();
    assert_eq!(
        gone, want,
        "every user only on the dead node, each reported once"
    );
    let entry = store.presence(&[survivor]).await.unwrap().remove(0);
    assert_eq!(
        entry.nodes,
        vec![live],
        "the survivor stays on the live node"
    );
}
