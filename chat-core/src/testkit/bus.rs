//! [`Bus`] conformance: two nodes of one deployment, topics, subscribe and
//! unsubscribe, origin and order.
//!
//! A message that must not arrive is checked without timers: after it, the
//! same publisher sends a marker on a topic the node did subscribe to, and
//! the marker must be the next thing the node receives (messages from one
//! publisher keep their order).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::fixtures::user;
use crate::cluster::{Bus, BusMessage, BusReceiver, Topic};
use crate::model::NodeId;

/// How long a receive may take before the test fails instead of hanging:
/// a guard against a lost message, not a speed check.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// One node of a deployment under test: its id and its bus handle.
#[derive(Clone)]
pub struct BusNode {
    /// The node's id, expected as the origin of what it publishes.
    pub id: NodeId,
    /// The node's bus.
    pub bus: Arc<dyn Bus>,
}

impl BusNode {
    /// A node with id `id` speaking through `bus`.
    pub fn new(id: impl Into<NodeId>, bus: impl Bus) -> Self {
        Self {
            id: id.into(),
            bus: Arc::new(bus),
        }
    }
}

impl std::fmt::Debug for BusNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusNode")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn topic() -> Topic {
    Topic::User(user("topic"))
}

async fn open(node: &BusNode) -> BusReceiver {
    node.bus
        .open()
        .await
        .unwrap_or_else(|e| panic!("open on node {} failed: {e}", node.id))
}

async fn subscribe(node: &BusNode, topic: &Topic) {
    node.bus
        .subscribe(topic)
        .await
        .unwrap_or_else(|e| panic!("subscribe of node {} to {topic:?} failed: {e}", node.id));
}

async fn publish(node: &BusNode, topics: &[Topic], payload: &str) {
    node.bus
        .publish(topics, Bytes::from(payload.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("publish from node {} failed: {e}", node.id));
}

async fn recv(rx: &mut BusReceiver, node: &BusNode, expecting: &str) -> BusMessage {
    match tokio::time::timeout(HANG_GUARD, rx.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!(
            "node {}'s bus receiver closed while expecting {expecting}",
            node.id
        ),
        Err(_) => panic!(
            "node {} received nothing in {HANG_GUARD:?} while expecting {expecting}",
            node.id
        ),
    }
}

fn expected(origin: &BusNode, topic: &Topic, payload: &str) -> BusMessage {
    BusMessage {
        origin: origin.id.clone(),
        topic: topic.clone(),
        payload: Bytes::from(payload.to_owned()),
    }
}

/// A message reaches the node subscribed to its topic, stamped with the
/// publisher's id, and not the node that did not subscribe.
pub async fn bus_delivers_to_subscribed_node_only(a: BusNode, b: BusNode) {
    let (mut rx_a, mut rx_b) = (open(&a).await, open(&b).await);
    let (t, marker) = (topic(), topic());
    subscribe(&b, &t).await;
    subscribe(&a, &marker).await;
    publish(&a, std::slice::from_ref(&t), "for b").await;
    assert_eq!(
        recv(&mut rx_b, &b, "the message for b").await,
        expected(&a, &t, "for b"),
        "b subscribed: it must receive, with a as origin"
    );
    publish(&a, std::slice::from_ref(&marker), "marker").await;
    assert_eq!(
        recv(&mut rx_a, &a, "the marker").await,
        expected(&a, &marker, "marker"),
        "a did not subscribe to b's topic: the marker must be the first thing it receives"
    );
}

/// Every subscribed node receives, the publisher too when it subscribed.
pub async fn bus_delivers_to_every_subscriber_including_publisher(a: BusNode, b: BusNode) {
    let (mut rx_a, mut rx_b) = (open(&a).await, open(&b).await);
    let t = topic();
    subscribe(&a, &t).await;
    subscribe(&b, &t).await;
    publish(&a, std::slice::from_ref(&t), "to all").await;
    assert_eq!(
        recv(&mut rx_b, &b, "the broadcast").await,
        expected(&a, &t, "to all"),
        "b subscribed: it must receive"
    );
    assert_eq!(
        recv(&mut rx_a, &a, "its own publish").await,
        expected(&a, &t, "to all"),
        "the publisher subscribed too: it must receive its own publish, with itself as origin"
    );
    publish(&b, std::slice::from_ref(&t), "from b").await;
    assert_eq!(
        recv(&mut rx_a, &a, "b's publish").await,
        expected(&b, &t, "from b"),
        "origin must be the publisher, b"
    );
}

/// After `unsubscribe` returns, the node no longer receives that topic and
/// still receives its other topics.
pub async fn bus_unsubscribe_stops_delivery(a: BusNode, b: BusNode) {
    let (_rx_a, mut rx_b) = (open(&a).await, open(&b).await);
    let (t, marker) = (topic(), topic());
    subscribe(&b, &t).await;
    subscribe(&b, &marker).await;
    publish(&a, std::slice::from_ref(&t), "before").await;
    assert_eq!(
        recv(&mut rx_b, &b, "the message before unsubscribe").await,
        expected(&a, &t, "before")
    );
    b.bus.unsubscribe(&t).await.expect("unsubscribe failed");
    publish(&a, std::slice::from_ref(&t), "after").await;
    publish(&a, std::slice::from_ref(&marker), "marker").await;
    assert_eq!(
        recv(&mut rx_b, &b, "the marker").await,
        expected(&a, &marker, "marker"),
        "after unsubscribe the topic must not be delivered: the marker must come next"
    );
}

/// One publish to several topics reaches a node once per subscribed topic,
/// each message naming its topic; `User(u)` and `Presence(u)` are different
/// topics.
pub async fn bus_publish_to_several_topics(a: BusNode, b: BusNode) {
    let (_rx_a, mut rx_b) = (open(&a).await, open(&b).await);
    let (u, v) = (user("u"), user("v"));
    let (user_u, presence_u, user_v, presence_v) = (
        Topic::User(u.clone()),
        Topic::Presence(u),
        Topic::User(v.clone()),
        Topic::Presence(v),
    );
    subscribe(&b, &user_u).await;
    subscribe(&b, &presence_u).await;
    subscribe(&b, &user_v).await;
    publish(
        &a,
        &[user_u.clone(), presence_u.clone(), presence_v.clone()],
        "many",
    )
    .await;
    let mut got = vec![
        recv(&mut rx_b, &b, "the first of two").await.topic,
        recv(&mut rx_b, &b, "the second of two").await.topic,
    ];
    got.sort_by_key(|t| format!("{t:?}"));
    let mut want = vec![user_u, presence_u];
    want.sort_by_key(|t| format!("{t:?}"));
    assert_eq!(
        got, want,
        "b must receive the message once on each topic it subscribed to"
    );
    publish(&a, std::slice::from_ref(&user_v), "marker").await;
    assert_eq!(
        recv(&mut rx_b, &b, "the marker").await,
        expected(&a, &user_v, "marker"),
        "Presence(v) was not subscribed (only User(v)): the marker must come next"
    );
}

/// Messages that one node publishes one after another reach a subscriber
/// in that order, payloads intact.
pub async fn bus_keeps_publish_order(a: BusNode, b: BusNode) {
    const COUNT: usize = 50;
    let (_rx_a, mut rx_b) = (open(&a).await, open(&b).await);
    let t = topic();
    subscribe(&b, &t).await;
    for n in 0..COUNT {
        publish(&a, std::slice::from_ref(&t), &format!("payload {n}")).await;
    }
    for n in 0..COUNT {
        let got = recv(&mut rx_b, &b, &format!("payload {n}")).await;
        assert_eq!(
            got,
            expected(&a, &t, &format!("payload {n}")),
            "messages must arrive in publish order"
        );
    }
}
