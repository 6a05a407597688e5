//! Logging a device out and blocking take effect on every node before they
//! answer, although each node caches devices and blocks: found by the
//! outside suite (examples/chat-server/tests/contract_v2), where a user
//! unblocked on one node was still refused on the other for a moment.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chat_core::Error;
use chat_core::cluster::{Discovery, NodeInfo};
use chat_core::engine::{CONFIRM_WAIT, CloseReason, Engine};
use chat_core::memory::{
    MemoryAuthenticator, MemoryBusHub, MemoryDiscovery, MemoryPresence, MemoryStore,
};
use chat_core::model::{NodeId, now_millis};
use serde_json::json;
use support::{Client, identity, signup};

/// Two nodes of one deployment (one store, presence, discovery,
/// authenticator and bus hub), with the hub and discovery for fault tests.
struct Deployment {
    one: Engine,
    two: Engine,
    hub: MemoryBusHub,
    discovery: Arc<MemoryDiscovery>,
}

async fn deployment() -> Deployment {
    let store = Arc::new(MemoryStore::new());
    let presence = Arc::new(MemoryPresence::new());
    let discovery = Arc::new(MemoryDiscovery::new());
    let auth = Arc::new(MemoryAuthenticator::default());
    let hub = MemoryBusHub::new();
    let node = |n: u16| {
        Engine::builder()
            .worker_id(n)
            .insecure_fast_password_hashing()
            .store(store.clone())
            .presence(presence.clone())
            .discovery(discovery.clone())
            .authenticator(auth.clone())
            .bus(Arc::new(hub.node(format!("node-{n}"))))
            .build()
    };
    Deployment {
        one: node(1).await.unwrap(),
        two: node(2).await.unwrap(),
        hub,
        discovery,
    }
}

async fn two_nodes() -> (Engine, Engine) {
    let d = deployment().await;
    (d.one, d.two)
}

#[tokio::test]
async fn a_logged_out_device_is_refused_on_the_other_node_at_once() {
    let (one, two) = two_nodes().await;
    signup(&one, "alice").await;
    let tablet = one
        .login("alice", "password", Some("tablet"))
        .await
        .unwrap();
    // The other node has the device in its cache.
    let who = two.authenticate(&tablet.token).await.unwrap();
    assert_eq!(who.device_id, tablet.device_id);

    one.remove_device(&tablet.user_id, &tablet.device_id)
        .await
        .unwrap();
    // No yield in between: the answer waited for the other node.
    assert!(matches!(
        two.authenticate(&tablet.token).await,
        Err(Error::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn a_block_and_an_unblock_hold_on_the_other_node_at_once() {
    let (one, two) = two_nodes().await;
    let alice = signup(&one, "alice").await;
    let bob = signup(&two, "bob").await;
    // Bob writes from the other node: it caches that alice blocks nobody.
    let mut b = Client::connect_device(&two, &identity(&bob)).await;
    b.send(json!({"type":"send","id":"1","to":alice.as_str(),"body":"hi"}))
        .await;
    b.expect("sent").await;

    one.block(&alice, &bob).await.unwrap();
    b.send(json!({"type":"send","id":"2","to":alice.as_str(),"body":"still?"}))
        .await;
    let refused = b.expect("error").await;
    assert_eq!(refused["code"], "blocked", "{refused}");

    one.unblock(&alice, &bob).await.unwrap();
    b.send(json!({"type":"send","id":"3","to":alice.as_str(),"body":"friends"}))
        .await;
    b.expect("sent").await;
}

#[tokio::test]
async fn a_node_listed_live_that_never_answers_delays_a_logout_by_confirm_wait_only() {
    let d = deployment().await;
    // A node that crashed: still listed live (its registration has not
    // expired), but nothing answers for it.
    let dead = NodeInfo {
        id: NodeId::from("node-3"),
        public_url: "ws://dead".into(),
        load: 0,
    };
    d.discovery
        .register(&dead, now_millis(), 3_600_000)
        .await
        .unwrap();
    signup(&d.one, "alice").await;
    let tablet = d
        .one
        .login("alice", "password", Some("tablet"))
        .await
        .unwrap();
    d.two.authenticate(&tablet.token).await.unwrap();

    // Virtual time from here: the wait is measured exactly, whatever the
    // machine's load.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    d.one
        .remove_device(&tablet.user_id, &tablet.device_id)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= CONFIRM_WAIT,
        "it waited for the dead node: {waited:?}"
    );
    assert!(
        waited < CONFIRM_WAIT + Duration::from_millis(100),
        "never longer than CONFIRM_WAIT: {waited:?}"
    );
    // The live node confirmed in time.
    assert!(matches!(
        d.two.authenticate(&tablet.token).await,
        Err(Error::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn a_node_that_missed_a_logout_forgets_the_device_when_its_bus_is_back() {
    let d = deployment().await;
    signup(&d.one, "alice").await;
    let tablet = d
        .one
        .login("alice", "password", Some("tablet"))
        .await
        .unwrap();
    let mut connected = Client::connect_device(&d.two, &tablet.identity()).await;
    d.two.authenticate(&tablet.token).await.unwrap();

    let two = NodeId::from("node-2");
    d.hub.cut(&two);
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    d.one
        .remove_device(&tablet.user_id, &tablet.device_id)
        .await
        .unwrap();
    assert!(started.elapsed() < CONFIRM_WAIT + Duration::from_millis(100));
    tokio::time::resume();
    // The cut node missed it: its cache still vouches for the device.
    d.two.authenticate(&tablet.token).await.unwrap();
    assert!(connected.out.close_reason().is_none());

    d.hub.restore(&two);
    // The session closes once the node handled its bus coming back.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while connected.out.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the logged-out session closes within 5 s");
    assert_eq!(connected.out.close_reason(), Some(CloseReason::Revoked));
    assert!(matches!(
        d.two.authenticate(&tablet.token).await,
        Err(Error::Unauthorized { .. })
    ));
}
