//! [`RedisPresence`]: who is online, on which node, with heartbeat expiry, in Redis.

use std::collections::HashMap;

use async_trait::async_trait;
use chat_core::Result;
use chat_core::cluster::{PresenceEntry, PresenceStore};
use chat_core::model::{Millis, NodeId, Presence, PresenceStatus, UserId};
use redis::Script;
use redis::aio::ConnectionManager;

use crate::conn::within;
use crate::keys::Keys;
use crate::options::RedisOptions;

/// A [`PresenceStore`] in Redis, shared by every node of a deployment.
///
/// Layout (under the prefix `p`):
/// - `p:pu:{user}`: hash node → open connections of the user there;
/// - `p:pn:{node}`: set of the users with connections on the node;
/// - `p:seen:{user}`: when the user last went offline;
/// - `p:beats`: sorted set node → the time its heartbeat expires, and
///   `p:beat_at`: hash node → the time of its last heartbeat.
///
/// `connect`, `disconnect` and `reap` are Lua scripts, so their answers
/// (went online, went offline, the users a reap took offline) are exact
/// when several nodes act on one user at once, and a user reaped by two
/// nodes at once is reported once. `presence` of many users is one
/// MULTI/EXEC round trip.
///
/// Expiry follows the trait: times are the callers' (`now`), a node's
/// connections count until a `reap` later than its heartbeat plus ttl
/// (every live node reaps at each of its heartbeats, so a dead node's users
/// show online for at most about one heartbeat interval past its ttl), and
/// a node that never sent a heartbeat never expires. The nodes' clocks must
/// agree to well within the ttl.
#[derive(Clone)]
pub struct RedisPresence {
    keys: Keys,
    options: RedisOptions,
    commands: ConnectionManager,
    scripts: &'static Scripts,
}

struct Scripts {
    connect: Script,
    disconnect: Script,
    reap: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        connect: Script::new(include_str!("scripts/connect.lua")),
        disconnect: Script::new(include_str!("scripts/disconnect.lua")),
        reap: Script::new(include_str!("scripts/reap.lua")),
    })
}

impl RedisPresence {
    /// Presence in the Redis at `url`, under `options.prefix`.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self> {
        let client = crate::client(url)?;
        let commands = crate::conn::commands(&client, &options).await?;
        Ok(Self::with_connection(commands, options))
    }

    pub(crate) fn with_connection(commands: ConnectionManager, options: RedisOptions) -> Self {
        Self {
            keys: Keys::new(&options.prefix),
            options,
            commands,
            scripts: scripts(),
        }
    }

    fn limit(&self) -> std::time::Duration {
        self.options.response_timeout
    }
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

fn entry(user: &UserId, nodes: HashMap<String, i64>, seen: Option<Millis>) -> PresenceEntry {
    if nodes.is_empty() {
        return PresenceEntry {
            presence: Presence {
                user_id: user.clone(),
                status: PresenceStatus::Offline,
                last_seen: seen,
            },
            nodes: Vec::new(),
        };
    }
    let mut nodes: Vec<NodeId> = nodes.into_keys().map(NodeId::from).collect();
    nodes.sort();
    PresenceEntry {
        presence: Presence {
            user_id: user.clone(),
            status: PresenceStatus::Online,
            last_seen: None,
        },
        nodes,
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn connect(&self, user: &UserId, node: &NodeId, _now: Millis) -> Result<bool> {
        let mut con = self.commands.clone();
        let mut call = self.scripts.connect.prepare_invoke();
        call.key(self.keys.user_nodes(user))
            .key(self.keys.node_users(node))
            .arg(node.as_str())
            .arg(user.as_str());
        let online: i64 = within(
            "presence connect",
            self.limit(),
            call.invoke_async(&mut con),
        )
        .await?;
        Ok(online == 1)
    }

    async fn disconnect(&self, user: &UserId, node: &NodeId, now: Millis) -> Result<bool> {
        let mut con = self.commands.clone();
        let mut call = self.scripts.disconnect.prepare_invoke();
        call.key(self.keys.user_nodes(user))
            .key(self.keys.node_users(node))
            .key(self.keys.last_seen(user))
            .arg(node.as_str())
            .arg(user.as_str())
            .arg(now);
        let offline: i64 = within(
            "presence disconnect",
            self.limit(),
            call.invoke_async(&mut con),
        )
        .await?;
        Ok(offline == 1)
    }

    async fn presence(&self, users: &[UserId]) -> Result<Vec<PresenceEntry>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for user in users {
            pipe.hgetall(self.keys.user_nodes(user))
                .get(self.keys.last_seen(user));
        }
        let mut con = self.commands.clone();
        let answers: Vec<(HashMap<String, i64>, Option<Millis>)> = {
            let flat: Vec<redis::Value> =
                within("presence", self.limit(), pipe.query_async(&mut con)).await?;
            let mut out = Vec::with_capacity(users.len());
            let mut it = flat.into_iter();
            while let (Some(nodes), Some(seen)) = (it.next(), it.next()) {
                let nodes = redis::from_redis_value(nodes)
                    .map_err(|e| crate::conn::unavailable("presence reply", e.into()))?;
                let seen = redis::from_redis_value(seen)
                    .map_err(|e| crate::conn::unavailable("presence reply", e.into()))?;
                out.push((nodes, seen));
            }
            out
        };
        if answers.len() != users.len() {
            return Err(chat_core::Error::unavailable_msg(
                "redis: presence reply has the wrong length",
            ));
        }
        Ok(users
            .iter()
            .zip(answers)
            .map(|(user, (nodes, seen))| entry(user, nodes, seen))
            .collect())
    }

    async fn heartbeat(&self, node: &NodeId, now: Millis, ttl: Millis) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(self.keys.beats(), node.as_str(), now.saturating_add(ttl))
            .ignore()
            .hset(self.keys.beat_at(), node.as_str(), now)
            .ignore();
        let mut con = self.commands.clone();
        within(
            "presence heartbeat",
            self.limit(),
            pipe.query_async::<()>(&mut con),
        )
        .await
    }

    async fn reap(&self, now: Millis) -> Result<Vec<Presence>> {
        let mut con = self.commands.clone();
        let mut call = self.scripts.reap.prepare_invoke();
        call.key(self.keys.beats())
            .key(self.keys.beat_at())
            .arg(now)
            .arg(self.keys.prefix());
        let flat: Vec<String> =
            within("presence reap", self.limit(), call.invoke_async(&mut con)).await?;
        let mut gone = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let last_seen = pair[1].parse::<Millis>().map_err(|e| {
                chat_core::Error::unavailable(
                    format!("redis: reap returned a bad time {:?}", pair[1]),
                    e,
                )
            })?;
            gone.push(Presence {
                user_id: UserId::from(pair[0].as_str()),
                status: PresenceStatus::Offline,
                last_seen: Some(last_seen),
            });
        }
        Ok(gone)
    }
}
