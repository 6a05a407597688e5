//! [`MemoryBusHub`] and [`MemoryBus`]: a bus between simulated nodes of one process.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::cluster::{Bus, BusMessage, BusReceiver, Topic};
use crate::error::Result;
use crate::model::NodeId;

/// How many messages wait for a node before the bus drops new ones.
const DEFAULT_CAPACITY: usize = 4096;

/// The shared middle of an in-process bus: several simulated nodes each take
/// a [`MemoryBus`] handle with [`MemoryBusHub::node`] and reach each other
/// through it, the way separate processes reach each other through Redis.
///
/// Clone it to share it (clones are the same hub).
#[derive(Clone, Debug)]
pub struct MemoryBusHub {
    inner: Arc<Mutex<HubState>>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct HubState {
    /// The channel into each node that called `open`.
    senders: HashMap<NodeId, mpsc::Sender<BusMessage>>,
    /// The nodes subscribed to each topic.
    subscribers: HashMap<Topic, HashSet<NodeId>>,
    /// Nodes cut off by [`MemoryBusHub::cut`]: what is published to them is lost.
    cut: HashSet<NodeId>,
}

/// One node's handle on a [`MemoryBusHub`].
///
/// Delivery: a message published to a topic goes to every node subscribed to
/// it at that moment, the publisher included when it subscribed too, once
/// per topic. Messages from one publisher reach a node in publish order.
/// Like Redis pub/sub, it is best effort: a node that does not drain its
/// receiver loses new messages once `capacity` wait (with a warning), and
/// messages to a node that has not called `open` are dropped. Nothing is lost
/// for good, because the store's pending deliveries are the truth.
#[derive(Clone, Debug)]
pub struct MemoryBus {
    hub: MemoryBusHub,
    node: NodeId,
}

impl Default for MemoryBusHub {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBusHub {
    /// A hub with room for 4096 waiting messages per node.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A hub with room for `capacity` waiting messages per node (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// The handle of node `node`. Asking twice for one id gives two handles
    /// on the same node.
    pub fn node(&self, node: impl Into<NodeId>) -> MemoryBus {
        MemoryBus {
            hub: self.clone(),
            node: node.into(),
        }
    }
}

impl MemoryBusHub {
    /// Simulates a lost connection of `node`, for fault tests: until
    /// [`MemoryBusHub::restore`], what is published to it is dropped.
    pub fn cut(&self, node: &NodeId) {
        self.inner.lock().cut.insert(node.clone());
    }

    /// Ends a [`MemoryBusHub::cut`]: the node gets a [`Topic::Resumed`]
    /// message, as a real bus sends after reconnecting.
    pub fn restore(&self, node: &NodeId) {
        let mut hub = self.inner.lock();
        if hub.cut.remove(node)
            && let Some(tx) = hub.senders.get(node)
        {
            let resumed = BusMessage {
                origin: node.clone(),
                topic: Topic::Resumed,
                payload: Bytes::new(),
            };
            if tx.try_send(resumed).is_err() {
                tracing::warn!(%node, "memory bus: could not tell the node it resumed");
            }
        }
    }
}

impl MemoryBus {
    /// The node this handle speaks for.
    pub fn node_id(&self) -> &NodeId {
        &self.node
    }
}

#[async_trait]
impl Bus for MemoryBus {
    /// Opens this node's receiver. Opening again replaces the previous one,
    /// which then ends.
    async fn open(&self) -> Result<BusReceiver> {
        let (tx, rx) = mpsc::channel(self.hub.capacity);
        self.hub.inner.lock().senders.insert(self.node.clone(), tx);
        Ok(rx)
    }

    async fn publish(&self, topics: &[Topic], payload: Bytes) -> Result<()> {
        let mut hub = self.hub.inner.lock();
        let mut closed = Vec::new();
        for topic in topics {
            let Some(nodes) = hub.subscribers.get(topic) else {
                continue;
            };
            for node in nodes {
                if hub.cut.contains(node) {
                    continue;
                }
                let Some(tx) = hub.senders.get(node) else {
                    continue;
                };
                let message = BusMessage {
                    origin: self.node.clone(),
                    topic: topic.clone(),
                    payload: payload.clone(),
                };
                // try_send never waits, so holding the lock here is fine and
                // keeps messages from one publisher in order.
                match tx.try_send(message) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        tracing::warn!(%node, ?topic, "memory bus: node queue full, message dropped");
                    }
                    Err(TrySendError::Closed(_)) => closed.push(node.clone()),
                }
            }
        }
        for node in closed {
            hub.senders.remove(&node);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &Topic) -> Result<()> {
        let mut hub = self.hub.inner.lock();
        hub.subscribers
            .entry(topic.clone())
            .or_default()
            .insert(self.node.clone());
        Ok(())
    }

    async fn unsubscribe(&self, topic: &Topic) -> Result<()> {
        let mut hub = self.hub.inner.lock();
        if let Some(nodes) = hub.subscribers.get_mut(topic) {
            nodes.remove(&self.node);
            if nodes.is_empty() {
                hub.subscribers.remove(topic);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_blocking_the_publisher() {
        let hub = MemoryBusHub::with_capacity(1);
        let node = hub.node("a");
        let mut rx = node.open().await.unwrap();
        let topic = Topic::User(UserId::from("u"));
        node.subscribe(&topic).await.unwrap();
        node.publish(std::slice::from_ref(&topic), Bytes::from_static(b"1"))
            .await
            .unwrap();
        node.publish(std::slice::from_ref(&topic), Bytes::from_static(b"2"))
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().payload, Bytes::from_static(b"1"));
        assert!(
            rx.try_recv().is_err(),
            "the second message should have been dropped"
        );
    }
}
