//! Several chat-core nodes as one service on Redis.
//!
//! - [`RedisBus`]: the [`Bus`](chat_core::cluster::Bus) on Redis pub/sub,
//!   one dedicated pub/sub connection per node that reconnects by itself
//!   and subscribes again to every topic the node holds.
//! - [`RedisPresence`]: the [`PresenceStore`](chat_core::cluster::PresenceStore):
//!   connection counts per user and node, node heartbeats with expiry, and
//!   a reap that is exact when nodes race (Lua scripts).
//! - [`RedisNodeIds`]: the [`NodeIds`](chat_core::cluster::NodeIds): each
//!   node's claim on its worker id, a key with a ttl that the engine renews
//!   at every heartbeat ([`RedisLease`]), so no two live nodes mint ids with
//!   one worker id.
//! - [`RedisDiscovery`]: the [`Discovery`](chat_core::cluster::Discovery):
//!   live nodes with their load and public URL; `pick` chooses the least
//!   loaded live node, ties broken by rendezvous hashing (see
//!   [`RedisDiscovery`] for why).
//!
//! Every key and channel lives under [`RedisOptions::prefix`], so several
//! deployments, or tests, share one Redis without meeting. Commands go
//! through one multiplexed connection that reconnects by itself
//! ([`redis::aio::ConnectionManager`]); while Redis is unreachable every
//! call fails with [`chat_core::Error::Unavailable`] within the configured
//! timeouts, never hangs.
//!
//! ```no_run
//! # async fn run() -> chat_core::Result<()> {
//! use std::sync::Arc;
//! use chat_cluster_redis::{RedisCluster, RedisOptions};
//! use chat_core::cluster::NodeIds;
//! use chat_core::engine::Engine;
//! use chat_core::model::NodeId;
//!
//! let cluster = RedisCluster::connect("redis://127.0.0.1:6379", RedisOptions::default()).await?;
//! // Any free worker id (or Some(n) for that one, refused while another node holds it),
//! // held for 15 s at a time; the engine renews it.
//! let lease = cluster.node_ids().claim(None, "ws://10.0.0.1:8080/ws", 15_000).await?;
//! let node = NodeId::from(format!("node-{}", lease.worker_id()));
//! let engine = Engine::builder()
//!     .lease(lease.into())
//!     .node_name(node.clone())
//!     .public_url("ws://10.0.0.1:8080/ws")
//!     .bus(Arc::new(cluster.bus(node).await?))
//!     .presence(Arc::new(cluster.presence()))
//!     .discovery(Arc::new(cluster.discovery()))
//!     .build()
//!     .await?;
//! # drop(engine);
//! # Ok(())
//! # }
//! ```
//!
//! docs/cluster.md at the repository's root draws the whole deployment and
//! what happens when each piece fails.

mod bus;
mod conn;
mod discovery;
mod frame;
mod keys;
mod lease;
mod options;
mod presence;
mod pubsub;
pub mod testing;

pub use bus::RedisBus;
pub use discovery::RedisDiscovery;
pub use lease::{RedisLease, RedisNodeIds};
pub use options::RedisOptions;
pub use presence::RedisPresence;

use chat_core::Result;
use chat_core::model::NodeId;
use redis::aio::ConnectionManager;

/// A client for `url` (TLS for `rediss://`, trusting `options.tls_root_ca`
/// when given), or `InvalidInput` naming what is wrong with it.
fn client(url: &str, options: &RedisOptions) -> Result<redis::Client> {
    let bad = |e: redis::RedisError| {
        chat_core::Error::invalid(format!("bad redis url {:?}: {e}", redact(url)))
    };
    match (&options.tls_root_ca, url.starts_with("rediss://")) {
        (Some(ca), true) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            },
        )
        .map_err(bad),
        _ => redis::Client::open(url).map_err(bad),
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

/// One Redis deployment: its command connection, shared by the presence
/// store, discovery and the bus publishes of the nodes made from it.
#[derive(Clone)]
pub struct RedisCluster {
    client: redis::Client,
    commands: ConnectionManager,
    options: RedisOptions,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("prefix", &self.options.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCluster {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port[/db]`).
    /// Fails with `InvalidInput` for a malformed URL and `Unavailable` when
    /// Redis cannot be reached now.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self> {
        let client = client(url, &options)?;
        let commands = conn::commands(&client, &options).await?;
        Ok(Self {
            client,
            commands,
            options,
        })
    }

    /// The options it was connected with.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// The bus of node `node` (its own pub/sub connection, opened now).
    pub async fn bus(&self, node: NodeId) -> Result<RedisBus> {
        RedisBus::with_connection(
            self.client.clone(),
            self.commands.clone(),
            node,
            self.options.clone(),
        )
        .await
    }

    /// The presence store.
    pub fn presence(&self) -> RedisPresence {
        RedisPresence::with_connection(self.commands.clone(), self.options.clone())
    }

    /// Service discovery.
    pub fn discovery(&self) -> RedisDiscovery {
        RedisDiscovery::with_connection(self.commands.clone(), self.options.clone())
    }

    /// Worker id claims.
    pub fn node_ids(&self) -> RedisNodeIds {
        RedisNodeIds::with_connection(self.commands.clone(), self.options.clone())
    }
}
