//! A node's standing in its deployment, in process: the lease on its worker
//! id (a node whose id was taken stops minting and leaves the id, presence
//! and discovery to the new holder) and presence rebuilt by the nodes after
//! the shared state lost its data, with nobody online pushed meanwhile.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chat_core::Error;
use chat_core::cluster::{NodeIds, PresenceStore};
use chat_core::engine::{Engine, Limits};
use chat_core::memory::{
    MemoryBusHub, MemoryDiscovery, MemoryNodeIds, MemoryPresence, MemoryStore, RecordingNotifier,
};
use chat_core::{NodeId, PresenceStatus, UserId};
use serde_json::json;
use support::{Client, signup};

/// A guard against a hang, not a speed check.
const HANG: Duration = Duration::from_secs(10);

/// Heartbeats fast enough for a short test: every 50 ms, a node dead after
/// 150 ms, an id lease of 300 ms.
fn fast_limits() -> Limits {
    Limits {
        heartbeat_every: Duration::from_millis(50),
        heartbeat_ttl: Duration::from_millis(150),
        id_lease: Duration::from_millis(300),
        user_budget: None,
        addr_budget: None,
        ..Limits::default()
    }
}

/// The shared state of a simulated deployment.
struct Deployment {
    store: Arc<MemoryStore>,
    presence: Arc<MemoryPresence>,
    ids: MemoryNodeIds,
    discovery: Arc<MemoryDiscovery>,
    hub: MemoryBusHub,
}

impl Deployment {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            presence: Arc::new(MemoryPresence::new()),
            ids: MemoryNodeIds::new(),
            discovery: Arc::new(MemoryDiscovery::new()),
            hub: MemoryBusHub::new(),
        }
    }

    /// A node that claims any free id, optionally with a push notifier.
    async fn node(&self, notifier: Option<Arc<RecordingNotifier>>) -> Engine {
        let ttl = fast_limits().id_lease.as_millis() as i64;
        let lease = self.ids.claim(None, "test node", ttl).await.unwrap();
        let name = NodeId::from(format!("node-{}", lease.worker_id()));
        let mut builder = Engine::builder()
            .insecure_fast_password_hashing()
            .limits(fast_limits())
            .store(self.store.clone())
            .presence(self.presence.clone())
            .discovery(self.discovery.clone())
            .bus(Arc::new(self.hub.node(name.clone())))
            .node_name(name)
            .lease(Arc::from(lease));
        if let Some(n) = notifier {
            builder = builder.notifier(n);
        }
        builder.build().await.expect("engine builds")
    }

    /// What a Redis restarted without persistence (or a FLUSHALL) does.
    fn lose_everything(&self) {
        self.presence.wipe();
        self.ids.wipe();
    }
}

async fn status_of(presence: &MemoryPresence, user: &UserId) -> (PresenceStatus, bool) {
    let entry = presence
        .presence(std::slice::from_ref(user))
        .await
        .unwrap()
        .remove(0);
    (entry.presence.status, entry.certain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_one_deployment_get_distinct_worker_ids() {
    let d = Deployment::new();
    let (one, two) = (d.node(None).await, d.node(None).await);
    assert_ne!(one.worker_id(), two.worker_id());
    assert_eq!(one.node_id().as_str(), format!("node-{}", one.worker_id()));
    let alice = signup(&one, "alice").await;
    let bob = signup(&two, "bob").await;
    let mut a = Client::connect(&one, &alice).await;
    let _b = Client::connect(&two, &bob).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"hi"}))
        .await;
    let sent = a.expect("sent").await;
    let id: u64 = sent["message_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        chat_core::MessageId(id).worker(),
        one.worker_id(),
        "message ids carry the claimed worker id"
    );
    // A clean shutdown gives the id back at once.
    let worker = one.worker_id();
    one.shutdown().await;
    d.ids
        .claim(Some(worker), "next node", 60_000)
        .await
        .expect("the id of a node that shut down is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_id_was_taken_stops_minting_and_leaves_the_id_alone() {
    let d = Deployment::new();
    let one = d.node(None).await;
    let alice = signup(&one, "alice").await;
    let bob = signup(&one, "bob").await;
    let mut a = Client::connect(&one, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"before"}))
        .await;
    a.expect("sent").await;

    // The shared state loses the claim and an intruder takes the id before
    // this node renews: its next renewal finds the id taken.
    let worker = one.worker_id();
    d.ids.wipe();
    let _intruder = d.ids.claim(Some(worker), "intruder", 60_000).await.unwrap();
    tokio::time::timeout(HANG, one.id_lost())
        .await
        .expect("the engine notices its id was taken");
    assert!(one.is_id_lost());

    a.send(json!({"type":"send","id":"2","to":bob.as_str(),"body":"after"}))
        .await;
    let e = a.expect("error").await;
    assert_eq!(e["code"], "unavailable", "no id is minted any more: {e}");
    assert!(
        matches!(one.connect(&bob).await, Err(Error::Unavailable { .. })),
        "no new session on a node that lost its id"
    );
    // Presence and the id are the intruder's now: closing alice's session
    // and shutting down touch neither.
    a.close().await;
    one.shutdown().await;
    assert_eq!(
        status_of(&d.presence, &alice).await.0,
        PresenceStatus::Online,
        "a node that lost its id must not write presence under the intruder's name"
    );
    assert!(
        matches!(
            d.ids.claim(Some(worker), "third", 60_000).await,
            Err(Error::AlreadyExists { .. })
        ),
        "the intruder still holds the id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_shared_state_is_lost_nodes_restore_presence_and_nobody_online_is_pushed() {
    let d = Deployment::new();
    let notifier = Arc::new(RecordingNotifier::new());
    let one = d.node(Some(notifier.clone())).await;
    let two = d.node(None).await;
    let alice = signup(&one, "alice").await;
    let bob = signup(&two, "bob").await;
    let carol = signup(&two, "carol").await;
    let mut a = Client::connect(&one, &alice).await;
    let mut b = Client::connect(&two, &bob).await;
    a.send(json!({"type":"presence_subscribe","id":"p","user_ids":[bob.as_str()]}))
        .await;
    assert_eq!(a.expect("presence").await["status"], "online");

    d.lose_everything();
    // Right after the loss presence cannot vouch that bob is offline (unless
    // his node has already re-registered him).
    let (status, certain) = status_of(&d.presence, &bob).await;
    assert!(
        status == PresenceStatus::Online || !certain,
        "presence is sure bob is offline right after it lost its data"
    );
    // Bob is connected (on node two): the message reaches him live, and he
    // must not be pushed, whether or not his node re-registered him yet.
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"still there?"}))
        .await;
    a.expect("sent").await;
    let got = b.expect("message").await;
    assert_eq!(got["message"]["body"], "still there?");
    // Carol is offline: her push comes, once presence is sure.
    a.send(json!({"type":"send","id":"2","to":carol.as_str(),"body":"wake up"}))
        .await;
    a.expect("sent").await;
    let pushed = tokio::time::timeout(HANG, notifier.wait_for(1))
        .await
        .expect("carol is pushed once presence is sure");
    assert_eq!(pushed[0].user_id, carol);

    // Node two restored bob: presence is sure again, and alice heard of it.
    let deadline = tokio::time::Instant::now() + HANG;
    while status_of(&d.presence, &bob).await != (PresenceStatus::Online, true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's presence never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p = a.expect("presence").await;
    assert_eq!(
        (p["user_id"].as_str(), p["status"].as_str()),
        (Some(bob.as_str()), Some("online"))
    );
    // Both nodes claimed their ids back.
    for node in [&one, &two] {
        assert!(
            matches!(
                d.ids
                    .claim(Some(node.worker_id()), "intruder", 60_000)
                    .await,
                Err(Error::AlreadyExists { .. })
            ),
            "{} claimed its id again",
            node.node_id()
        );
    }
    // Live delivery and presence changes cross nodes as before, and bob
    // was never pushed.
    a.send(json!({"type":"send","id":"3","to":bob.as_str(),"body":"back"}))
        .await;
    a.expect("sent").await;
    assert_eq!(b.expect("message").await["message"]["body"], "back");
    b.close().await;
    assert_eq!(a.expect("presence").await["status"], "offline");
    let pushed: Vec<UserId> = notifier
        .notifications()
        .into_iter()
        .map(|n| n.user_id)
        .collect();
    assert_eq!(
        pushed,
        vec![carol],
        "only carol, who was offline, is pushed"
    );
}

#[tokio::test]
async fn a_lease_no_longer_than_a_heartbeat_or_another_worker_id_is_refused() {
    let short = Limits {
        id_lease: Duration::from_secs(5),
        heartbeat_every: Duration::from_secs(5),
        ..Limits::default()
    };
    match Engine::builder().limits(short).build().await {
        Err(Error::InvalidInput { reason }) => assert!(reason.contains("id lease"), "{reason}"),
        other => panic!(
            "a lease no longer than a heartbeat must be refused, got {:?}",
            other.err()
        ),
    }
    let lease = MemoryNodeIds::new()
        .claim_now(Some(3), "me", 60_000)
        .unwrap();
    match Engine::builder()
        .worker_id(4)
        .lease(Arc::new(lease))
        .build()
        .await
    {
        Err(Error::InvalidInput { reason }) => assert!(reason.contains("worker id 4"), "{reason}"),
        other => panic!(
            "a worker id other than the lease's must be refused, got {:?}",
            other.err()
        ),
    }
    match Engine::builder().worker_id(1024).build().await {
        Err(Error::InvalidInput { reason }) => assert!(reason.contains("1024"), "{reason}"),
        other => panic!("worker id 1024 is out of range, got {:?}", other.err()),
    }
}

/// A lease whose renewals fail while the switch is on, as when the
/// cluster store cannot be reached.
struct Unreachable {
    worker: u16,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl chat_core::cluster::NodeLease for Unreachable {
    fn worker_id(&self) -> u16 {
        self.worker
    }

    async fn renew(&self, _ttl: i64) -> chat_core::Result<chat_core::cluster::Renewal> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable_msg("the cluster store does not answer"));
        }
        Ok(chat_core::cluster::Renewal::Held)
    }

    async fn release(&self) -> chat_core::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_renew_its_lease_stops_minting_until_it_can() {
    let lease = Arc::new(Unreachable {
        worker: 5,
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let engine = Engine::builder()
        .insecure_fast_password_hashing()
        .limits(fast_limits())
        .lease(lease.clone())
        .build()
        .await
        .unwrap();
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let send = async |a: &mut Client, n: usize| {
        a.send(json!({"type":"send","id":n.to_string(),"to":bob.as_str(),"body":format!("m{n}")}))
            .await;
        a.next().await
    };
    assert_eq!(send(&mut a, 0).await["type"], "sent");

    // Renewals fail: once the lease could have lapsed, no id is minted.
    lease.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + HANG;
    let mut n = 1;
    let refused = loop {
        let answer = send(&mut a, n).await;
        n += 1;
        if answer["type"] == "error" {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends still minted ids long after renewals stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused["code"], "unavailable", "{refused}");
    let not_ready = engine.ready(HANG).await.unwrap_err();
    assert_eq!(
        not_ready.part(),
        chat_core::engine::ReadyPart::NodeId,
        "{not_ready}"
    );
    let stored = engine
        .history(
            &alice,
            &chat_core::ConversationId::direct(&alice, &bob),
            None,
            Some(100),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), n - 1, "the refused send stored nothing");

    // Renewals work again: so do sends.
    lease.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + HANG;
    while send(&mut a, n).await["type"] != "sent" {
        n += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends never worked again after renewals did"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !engine.is_id_lost(),
        "a lease that could not be renewed is not lost"
    );
    engine.ready(HANG).await.expect("ready again");
}
