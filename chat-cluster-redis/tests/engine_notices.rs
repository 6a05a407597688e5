//! A device logout and a block change made on one node hold on the other at
//! once when the nodes talk through Redis: the confirmation that the other
//! node applied the notice travels on the Redis bus too (the engine test
//! chat-core/tests/engine_cluster_notices.rs checks the same on the
//! in-memory hub, and what a silent node costs).

use std::sync::Arc;
use std::time::Duration;

use chat_cluster_redis::{RedisCluster, testing};
use chat_core::Error;
use chat_core::auth::Identity;
use chat_core::engine::{Engine, Outbound, Session};
use chat_core::memory::{MemoryAuthenticator, MemoryStore};
use chat_core::model::{NodeId, UserId};
use serde_json::{Value, json};

/// A guard against a hang, not a speed check.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Two nodes on one Redis deployment (bus, presence, discovery) and one
/// in-memory store and authenticator.
async fn two_nodes(cluster: &RedisCluster) -> (Engine, Engine) {
    let store = Arc::new(MemoryStore::new());
    let auth = Arc::new(MemoryAuthenticator::default());
    let mut nodes = Vec::new();
    for n in [1u16, 2] {
        let node = NodeId::from(format!("node-{n}"));
        let engine = Engine::builder()
            .worker_id(n)
            .insecure_fast_password_hashing()
            .store(store.clone())
            .presence(Arc::new(cluster.presence()))
            .discovery(Arc::new(cluster.discovery()))
            .authenticator(auth.clone())
            .bus(Arc::new(cluster.bus(node).await.expect("the bus connects")))
            .build()
            .await
            .expect("the engine starts");
        nodes.push(engine);
    }
    let two = nodes.pop().expect("two nodes");
    let one = nodes.pop().expect("two nodes");
    (one, two)
}

/// One device's session on a node.
struct Device {
    session: Session,
    out: Outbound,
}

impl Device {
    async fn connect(engine: &Engine, identity: &Identity) -> Self {
        let (mut session, out) = engine.connect(identity).await.expect("connect");
        session.start().await.expect("sync");
        let mut device = Self { session, out };
        device.frame_of("synced").await;
        device
    }

    /// Skips frames up to the next one of `kind`.
    async fn frame_of(&mut self, kind: &str) -> Value {
        self.frame_of_any(&[kind]).await
    }

    /// Sends a direct message to `to`: its answer, `sent` or `error` (the
    /// sends are made one after another, so the next answer is its own).
    async fn send_to(&mut self, to: &UserId, id: &str) -> Value {
        let frame = json!({"type": "send", "id": id, "to": to.as_str(), "body": id});
        self.session.handle_text(&frame.to_string()).await;
        self.frame_of_any(&["sent", "error"]).await
    }

    /// Skips frames up to the next one of one of `kinds`.
    async fn frame_of_any(&mut self, kinds: &[&str]) -> Value {
        loop {
            let bytes = tokio::time::timeout(HANG_GUARD, self.out.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kinds:?} frame within {HANG_GUARD:?}"))
                .expect("the session is open");
            let frame: Value = serde_json::from_slice(&bytes).expect("frames are JSON");
            if kinds.iter().any(|k| frame["type"] == *k) {
                return frame;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_and_a_block_hold_on_the_other_node_at_once_over_redis() {
    let Some(cluster) = testing::fresh_cluster().await else {
        return;
    };
    let (one, two) = two_nodes(&cluster).await;
    let alice = one.signup("alice", "password", None).await.unwrap();
    let bob = two.signup("bob", "password", None).await.unwrap();

    // Logout: node two has the tablet in its cache, then it is removed on
    // node one; the answer came after node two forgot it.
    let tablet = one
        .login("alice", "password", Some("tablet"))
        .await
        .unwrap();
    two.authenticate(&tablet.token).await.unwrap();
    one.remove_device(&tablet.user_id, &tablet.device_id)
        .await
        .unwrap();
    assert!(matches!(
        two.authenticate(&tablet.token).await,
        Err(Error::Unauthorized { .. })
    ));

    // Blocks: bob writes from node two, which caches that alice blocks
    // nobody; the block and the unblock on node one hold there at once.
    let mut b = Device::connect(&two, &bob.identity()).await;
    assert_eq!(b.send_to(&alice.user_id, "1").await["type"], "sent");
    one.block(&alice.user_id, &bob.user_id).await.unwrap();
    let refused = b.send_to(&alice.user_id, "2").await;
    assert_eq!(refused["code"], "blocked", "{refused}");
    one.unblock(&alice.user_id, &bob.user_id).await.unwrap();
    assert_eq!(b.send_to(&alice.user_id, "3").await["type"], "sent");
}
