//! [`RedisBus`]: the cross-node [`Bus`] on Redis pub/sub.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chat_core::cluster::{Bus, BusReceiver, Topic};
use chat_core::model::NodeId;
use chat_core::{Error, Result};
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::conn::within;
use crate::frame;
use crate::keys::Keys;
use crate::options::RedisOptions;
use crate::pubsub::{self, Subscriptions};

/// One node's [`Bus`] on Redis pub/sub.
///
/// - Topics are channels: `{prefix}:user:{id}` and `{prefix}:presence:{id}`.
///   A node subscribes only to the topics of its own sessions, so Redis
///   sends each node only what it wants. It also holds `{prefix}:node:{id}`,
///   on which nothing is published: a sign that it runs, which survives a
///   FLUSHALL (see [`crate::RedisNodeIds`]).
/// - Publishes go through the shared command connection (a pipeline for
///   several topics, one round trip); subscriptions live on a dedicated
///   pub/sub connection per node. Each message carries the origin node id,
///   length-prefixed, before the frame.
/// - `subscribe` returns once Redis confirmed the subscription, so what is
///   published after it returns arrives. Publishes awaited one after another
///   travel on one connection and reach subscribers in that order.
/// - Redis restarts: the pub/sub connection reconnects by itself with
///   exponential backoff (and jitter) and subscribes again to every topic
///   this node holds (kept locally). While Redis is unreachable, `publish`
///   and `subscribe` fail with [`Error::Unavailable`] within the configured
///   timeouts; the engine logs that, the messages are in the store, and
///   recipients get them at their next sync. A subscribe that failed is
///   still remembered and made when the connection is back.
/// - After a reconnect it hands its node a [`Topic::Resumed`] message, and
///   the engine re-syncs every local session: what was published while the
///   connection was down reaches them from the store, late but not lost.
/// - Like the in-memory bus it is best effort: messages published while
///   this node's subscription connection was down, or past
///   [`RedisOptions::bus_capacity`] waiting for the engine, do not reach
///   this node's sessions live. Delivery state lives in the store, so
///   those sessions get them at their next sync.
///
/// Dropping it closes its pub/sub connection.
pub struct RedisBus {
    node: NodeId,
    keys: Keys,
    options: RedisOptions,
    commands: ConnectionManager,
    subs: Arc<Subscriptions>,
    driver: JoinHandle<()>,
}

impl RedisBus {
    /// The bus of node `node`: opens its pub/sub connection now, so a wrong
    /// URL or an unreachable Redis fails here rather than at first use.
    pub async fn connect(url: &str, node: NodeId, options: RedisOptions) -> Result<Self> {
        let client = crate::client(url, &options)?;
        let commands = crate::conn::commands(&client, &options).await?;
        Self::with_connection(client, commands, node, options).await
    }

    pub(crate) async fn with_connection(
        client: redis::Client,
        commands: ConnectionManager,
        node: NodeId,
        options: RedisOptions,
    ) -> Result<Self> {
        if u16::try_from(node.as_str().len()).is_err() {
            return Err(Error::invalid("a node id may be at most 65,535 bytes"));
        }
        let keys = Keys::new(&options.prefix);
        let (subs, stream) = Subscriptions::connect(client, &options).await?;
        // The beacon: while this node runs, its channel has a subscriber,
        // which tells a node that starts after Redis lost its data that
        // nodes are running (see RedisNodeIds).
        subs.subscribe(keys.beacon(&node)).await?;
        let subs = Arc::new(subs);
        let driver = tokio::spawn(pubsub::drive(
            subs.clone(),
            stream,
            keys.clone(),
            options.clone(),
            node.clone(),
        ));
        Ok(Self {
            node,
            keys,
            options,
            commands,
            subs,
            driver,
        })
    }

    /// The node this bus speaks for.
    pub fn node_id(&self) -> &NodeId {
        &self.node
    }

    /// How many times the pub/sub connection has been re-established since
    /// this bus connected (0 while the first connection holds).
    pub fn reconnects(&self) -> u64 {
        self.subs.reconnects()
    }

    /// Completes once the pub/sub connection has been re-established more
    /// than `seen` times and every held topic subscribed again.
    pub async fn wait_for_reconnect(&self, seen: u64) {
        self.subs.wait_for_reconnect(seen).await;
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("node", &self.node)
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for RedisBus {
    /// Opens this node's receiver. Opening again replaces the previous one,
    /// which then ends.
    async fn open(&self) -> Result<BusReceiver> {
        let (tx, rx) = mpsc::channel(self.options.bus_capacity.max(1));
        self.subs.set_output(tx);
        Ok(rx)
    }

    async fn publish(&self, topics: &[Topic], payload: Bytes) -> Result<()> {
        if topics.is_empty() {
            return Ok(());
        }
        let framed = frame::encode(&self.node, &payload);
        let mut pipe = redis::pipe();
        for topic in topics {
            pipe.publish(self.keys.channel(topic), framed.as_slice())
                .ignore();
        }
        let mut con = self.commands.clone();
        within(
            "publish",
            self.options.response_timeout,
            pipe.query_async::<()>(&mut con),
        )
        .await
    }

    async fn subscribe(&self, topic: &Topic) -> Result<()> {
        self.subs.subscribe(self.keys.channel(topic)).await
    }

    async fn unsubscribe(&self, topic: &Topic) -> Result<()> {
        self.subs.unsubscribe(self.keys.channel(topic)).await
    }
}
