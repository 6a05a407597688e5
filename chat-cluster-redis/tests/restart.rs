//! Redis goes away and comes back: calls fail with `Unavailable` meanwhile,
//! and the bus reconnects by itself and subscribes again to every topic it
//! holds, including one asked for while Redis was down. Redis loses its
//! data (FLUSHALL): presence cannot vouch for offline users until it has
//! settled, and a running node claims its id back before a node that
//! starts meanwhile can take it.
//!
//! Runs a private `redis-server` on a free port, since stopping or flushing
//! the shared one would break the other tests. It needs CHAT_TEST_REDIS_URL like the
//! other tests (that is what says Redis tests are wanted here) and the
//! `redis-server` binary on PATH.

use std::time::Duration;

use bytes::Bytes;
use chat_cluster_redis::testing::{self, PrivateRedis};
use chat_cluster_redis::{RedisCluster, RedisOptions};
use chat_core::Error;
use chat_core::cluster::{Bus, BusMessage, BusReceiver, PresenceStore, Topic};
use chat_core::model::{NodeId, UserId};

/// A guard against a hang, not a speed check.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn recv(rx: &mut BusReceiver, what: &str) -> BusMessage {
    match tokio::time::timeout(HANG_GUARD, rx.recv()).await {
        Ok(Some(m)) => m,
        Ok(None) => panic!("receiver closed while expecting {what}"),
        Err(_) => panic!("nothing received in {HANG_GUARD:?} while expecting {what}"),
    }
}

/// Publishes until Redis takes it: the command connection notices a
/// restart at its first failed call, then reconnects.
async fn publish_when_back(bus: &dyn Bus, topics: &[Topic], payload: &'static str) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        match bus
            .publish(topics, Bytes::from_static(payload.as_bytes()))
            .await
        {
            Ok(()) => return,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "publish never worked again after the restart: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_unavailable<T: std::fmt::Debug>(result: chat_core::Result<T>, what: &str) {
    match result {
        Err(e @ Error::Unavailable { .. }) => assert_eq!(e.code(), "unavailable"),
        other => panic!("{what} while Redis is down must fail with Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bus_resubscribes_after_a_redis_restart() {
    if testing::test_url().is_none() {
        return; // test_url printed the skip line (or panicked under CI)
    }
    let port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.ready().await;
    let options = RedisOptions {
        connect_timeout: Duration::from_millis(300),
        response_timeout: Duration::from_millis(500),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ping_every: Duration::from_millis(200),
        ..RedisOptions::with_prefix(testing::fresh_prefix())
    };
    let cluster = RedisCluster::connect(&redis.url(), options).await.unwrap();
    let (a, b) = (NodeId::from("a"), NodeId::from("b"));
    let bus_a = cluster.bus(a.clone()).await.unwrap();
    let bus_b = cluster.bus(b).await.unwrap();
    let _rx_a = bus_a.open().await.unwrap();
    let mut rx_b = bus_b.open().await.unwrap();
    let (t1, t2, t3) = (
        Topic::User(UserId::from("u1")),
        Topic::Presence(UserId::from("u2")),
        Topic::User(UserId::from("u3")),
    );
    bus_b.subscribe(&t1).await.unwrap();
    bus_b.subscribe(&t2).await.unwrap();
    bus_a
        .publish(std::slice::from_ref(&t1), Bytes::from_static(b"before"))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut rx_b, "the message before the restart")
            .await
            .payload,
        "before"
    );

    let reconnects = bus_b.reconnects();
    redis.kill();
    assert_unavailable(
        bus_a
            .publish(std::slice::from_ref(&t1), Bytes::from_static(b"lost"))
            .await,
        "publish",
    );
    let presence = cluster.presence();
    assert_unavailable(presence.presence(&[UserId::from("u1")]).await, "presence");
    // Asked for while down: refused now, remembered for the next connection.
    assert_unavailable(bus_b.subscribe(&t3).await, "subscribe");

    let redis = PrivateRedis::start(port);
    redis.ready().await;
    tokio::time::timeout(HANG_GUARD, bus_b.wait_for_reconnect(reconnects))
        .await
        .expect("the bus never reconnected");

    // The bus tells its engine first that it was away, so sessions re-sync.
    let resumed = recv(&mut rx_b, "the resumed signal").await;
    assert_eq!(resumed.topic, Topic::Resumed);

    publish_when_back(&bus_a, &[t1.clone(), t2.clone(), t3.clone()], "after").await;
    let mut topics = Vec::new();
    for n in 0..3 {
        let m = recv(&mut rx_b, &format!("message {n} after the restart")).await;
        assert_eq!(m.payload, "after");
        assert_eq!(m.origin, a);
        topics.push(format!("{:?}", m.topic));
    }
    topics.sort();
    let mut want = vec![format!("{t1:?}"), format!("{t2:?}"), format!("{t3:?}")];
    want.sort();
    assert_eq!(topics, want, "every held topic is subscribed again, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_flush_presence_is_unsure_and_running_nodes_reclaim_their_ids_first() {
    use chat_core::cluster::{NodeIds, Renewal};
    use chat_core::model::{PresenceStatus, now_millis};
    if testing::test_url().is_none() {
        return; // test_url printed the skip line (or panicked under CI)
    }
    const TTL: i64 = 1_000;
    let redis = PrivateRedis::start(PrivateRedis::free_port());
    redis.ready().await;
    let options = RedisOptions {
        connect_timeout: Duration::from_millis(300),
        response_timeout: Duration::from_millis(500),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..RedisOptions::with_prefix(testing::fresh_prefix())
    };
    let cluster = RedisCluster::connect(&redis.url(), options).await.unwrap();
    let ids = cluster.node_ids();
    let presence = cluster.presence();
    // A running node: its bus (and beacon), its id, a connected user.
    let a = ids.claim(None, "ws://a/ws", TTL).await.unwrap();
    let node_a = NodeId::from(format!("node-{}", a.worker_id()));
    let _bus_a = cluster.bus(node_a.clone()).await.unwrap();
    let (u, never) = (UserId::from("u"), UserId::from("never"));
    presence
        .heartbeat(&node_a, now_millis(), TTL)
        .await
        .unwrap();
    presence.connect(&u, &node_a, now_millis()).await.unwrap();

    redis.flushall().await;
    let entry = presence
        .presence(std::slice::from_ref(&u))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (entry.presence.status, entry.certain),
        (PresenceStatus::Offline, false),
        "after the flush presence cannot vouch that u is offline"
    );

    // Two nodes start now, one asking for a's id: they wait while the
    // deployment settles, and a claims its id back meanwhile.
    let taken = tokio::spawn({
        let ids = ids.clone();
        let id = a.worker_id();
        async move {
            ids.claim(Some(id), "ws://b/ws", TTL)
                .await
                .map(|l| l.worker_id())
        }
    });
    let any = tokio::spawn({
        let ids = ids.clone();
        async move {
            ids.claim(None, "ws://c/ws", TTL)
                .await
                .map(|l| l.worker_id())
        }
    });
    assert_eq!(a.renew(TTL).await.unwrap(), Renewal::Reclaimed);
    // And keeps renewing, as the engine does at every heartbeat.
    let a = std::sync::Arc::new(a);
    let renewals = tokio::spawn({
        let a = a.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(TTL as u64 / 4)).await;
                assert_eq!(a.renew(TTL).await.unwrap(), Renewal::Held);
            }
        }
    });
    presence
        .heartbeat(&node_a, now_millis(), TTL)
        .await
        .unwrap();
    let changes = presence
        .restore(&node_a, &[(u.clone(), 1)], now_millis())
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "u comes back online: {changes:?}");
    assert_eq!(changes[0].status, PresenceStatus::Online);
    match tokio::time::timeout(HANG_GUARD, taken)
        .await
        .unwrap()
        .unwrap()
    {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("a's id must stay a's, got {other:?}"),
    }
    let other = tokio::time::timeout(HANG_GUARD, any)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_ne!(other, a.worker_id(), "a free id, not a's");
    assert!(!renewals.is_finished(), "a held its id throughout");
    renewals.abort();

    // Once settled, offline answers are sure again.
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let entries = presence
            .presence(&[u.clone(), never.clone()])
            .await
            .unwrap();
        assert_eq!(entries[0].presence.status, PresenceStatus::Online);
        assert!(entries[0].certain);
        if entries[1].certain {
            assert_eq!(entries[1].presence.status, PresenceStatus::Offline);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence never settled after the flush"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
