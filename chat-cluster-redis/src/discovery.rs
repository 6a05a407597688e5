//! [`RedisDiscovery`]: live nodes, their load, and the node for each user, in Redis.

use async_trait::async_trait;
use chat_core::cluster::{Discovery, NodeInfo, choose_node};
use chat_core::model::{Millis, NodeId, UserId};
use chat_core::{Error, Result};
use redis::Script;
use redis::aio::ConnectionManager;

use crate::conn::within;
use crate::keys::Keys;
use crate::options::RedisOptions;

/// How long after expiry a registration is deleted. Expired ones are never
/// reported live; keeping them a while means a node whose clock runs ahead
/// cannot make the others' registrations flicker.
const FORGET_AFTER: Millis = 60_000;

/// A [`Discovery`] in Redis, shared by every node of a deployment.
///
/// Layout (under the prefix `p`): `p:nodes`, a sorted set node → the time
/// its registration expires; `p:node_url` and `p:node_load`, hashes node →
/// public URL and load. `register` and `deregister` are one MULTI/EXEC
/// each; `live_nodes` is one script.
///
/// # Which node `pick` chooses
///
/// The least loaded live node; among nodes with equal load, the one with
/// the highest rendezvous weight for the user (FNV-1a of user id, a 0xff
/// byte and node id: fixed by its specification, so every API server
/// computes the same answer). This is the in-memory reference's rule, and
/// the conformance suite holds every adapter to it.
///
/// Why least loaded rather than rendezvous hashing with a load cap: chat
/// connections are long-lived and a user has no data on a node (delivery
/// state is in the store, presence in Redis), so stickiness buys little,
/// while filling new or emptied nodes (after a deploy or a crash) matters.
/// The rendezvous tie-break still keeps a user on one node while loads
/// are equal, and moves only the users of a node that leaves.
///
/// The cost: loads are as fresh as the last heartbeat, so a burst of logins
/// between two heartbeats all lands on the node that was least loaded at
/// the last one. With heartbeats every few seconds this evens out within a
/// few beats; deployments with login storms can lower the heartbeat interval.
#[derive(Clone)]
pub struct RedisDiscovery {
    keys: Keys,
    options: RedisOptions,
    commands: ConnectionManager,
    live: &'static Script,
}

fn live_script() -> &'static Script {
    static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(include_str!("scripts/live_nodes.lua")))
}

impl RedisDiscovery {
    /// Discovery in the Redis at `url`, under `options.prefix`.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self> {
        let client = crate::client(url, &options)?;
        let commands = crate::conn::commands(&client, &options).await?;
        Ok(Self::with_connection(commands, options))
    }

    pub(crate) fn with_connection(commands: ConnectionManager, options: RedisOptions) -> Self {
        Self {
            keys: Keys::new(&options.prefix),
            options,
            commands,
            live: live_script(),
        }
    }
}

impl std::fmt::Debug for RedisDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDiscovery")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Discovery for RedisDiscovery {
    async fn register(&self, node: &NodeInfo, now: Millis, ttl: Millis) -> Result<()> {
        let id = node.id.as_str();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(self.keys.nodes(), id, now.saturating_add(ttl))
            .ignore()
            .hset(self.keys.node_url(), id, node.public_url.as_str())
            .ignore()
            .hset(self.keys.node_load(), id, node.load)
            .ignore();
        let mut con = self.commands.clone();
        within(
            "discovery register",
            self.options.response_timeout,
            pipe.query_async::<()>(&mut con),
        )
        .await
    }

    async fn deregister(&self, node: &NodeId) -> Result<()> {
        let id = node.as_str();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrem(self.keys.nodes(), id)
            .ignore()
            .hdel(self.keys.node_url(), id)
            .ignore()
            .hdel(self.keys.node_load(), id)
            .ignore();
        let mut con = self.commands.clone();
        within(
            "discovery deregister",
            self.options.response_timeout,
            pipe.query_async::<()>(&mut con),
        )
        .await
    }

    async fn live_nodes(&self, now: Millis) -> Result<Vec<NodeInfo>> {
        let mut call = self.live.prepare_invoke();
        call.key(self.keys.nodes())
            .key(self.keys.node_url())
            .key(self.keys.node_load())
            .arg(now)
            .arg(now.saturating_sub(FORGET_AFTER));
        let mut con = self.commands.clone();
        let flat: Vec<String> = within(
            "discovery live nodes",
            self.options.response_timeout,
            call.invoke_async(&mut con),
        )
        .await?;
        flat.chunks_exact(3)
            .map(|n| {
                let load = n[2].parse::<u64>().map_err(|e| {
                    Error::unavailable(format!("redis: node {} has a bad load {:?}", n[0], n[2]), e)
                })?;
                Ok(NodeInfo {
                    id: NodeId::from(n[0].as_str()),
                    public_url: n[1].clone(),
                    load,
                })
            })
            .collect()
    }

    async fn pick(&self, user: &UserId, now: Millis) -> Result<Option<NodeInfo>> {
        Ok(choose_node(user, self.live_nodes(now).await?))
    }
}
