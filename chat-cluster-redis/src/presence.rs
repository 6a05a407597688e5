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
///   `p:beat_at`: hash node → the time of its last heartbeat;
/// - `p:epoch`: the marker that this Redis holds the deployment's state, and
///   `p:settling` (with a ttl): presence is being rebuilt after a loss.
///
/// Redis is a cache of who is connected where, which the nodes rebuild:
/// run without persistence, a restart (or a FLUSHALL) empties it. The first
/// heartbeat that finds the marker gone puts it back and sets `p:settling`
/// for [`RedisOptions::settle_ms`] of the heartbeat ttl; while the marker is
/// missing or `p:settling` lives, offline answers are not
/// [`certain`](PresenceEntry::certain). Every node re-registers its
/// sessions with [`restore`](PresenceStore::restore) well within that time
/// (the engine does when its bus reconnects or its id lease had vanished).
///
/// `connect`, `disconnect` and `reap` are Lua scripts, so their answers
/// (went online, went offline, the users a reap took offline) are exact
/// when several nodes act on one user at once, and a user reaped by two
/// nodes at once is reported once. `presence` of many users is one
/// MULTI/EXEC round trip.
///
/// Expiry follows the trait: times are the callers' (`now`), a node's
/// connections count until a `reap` later than its heartbeat plus ttl
/// (which forgets them 500 users per script call)
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
    heartbeat: Script,
    restore: Script,
}

/// Users per restore script: each call is short, so Redis keeps serving
/// others between them.
const RESTORE_CHUNK: usize = 500;

/// Users per reap script, for the same reason: a dead node that held
/// 100,000 users is reaped in 200 short calls, not one long one.
const REAP_CHUNK: usize = 500;

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        connect: Script::new(include_str!("scripts/connect.lua")),
        disconnect: Script::new(include_str!("scripts/disconnect.lua")),
        reap: Script::new(include_str!("scripts/reap.lua")),
        heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
        restore: Script::new(include_str!("scripts/restore.lua")),
    })
}

impl RedisPresence {
    /// Presence in the Redis at `url`, under `options.prefix`.
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

fn entry(
    user: &UserId,
    nodes: HashMap<String, i64>,
    seen: Option<Millis>,
    certain: bool,
) -> PresenceEntry {
    if nodes.is_empty() {
        return PresenceEntry {
            presence: Presence {
                user_id: user.clone(),
                status: PresenceStatus::Offline,
                last_seen: seen,
            },
            nodes: Vec::new(),
            certain,
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
        certain: true,
    }
}

fn bad_reply(e: redis::ParsingError) -> chat_core::Error {
    crate::conn::unavailable("presence reply", e.into())
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
        pipe.atomic()
            .exists(self.keys.epoch())
            .exists(self.keys.settling());
        for user in users {
            pipe.hgetall(self.keys.user_nodes(user))
                .get(self.keys.last_seen(user));
        }
        let mut con = self.commands.clone();
        let flat: Vec<redis::Value> =
            within("presence", self.limit(), pipe.query_async(&mut con)).await?;
        let mut it = flat.into_iter();
        let (Some(epoch), Some(settling)) = (it.next(), it.next()) else {
            return Err(chat_core::Error::unavailable_msg(
                "redis: presence reply is too short",
            ));
        };
        let epoch: bool = redis::from_redis_value(epoch).map_err(bad_reply)?;
        let settling: bool = redis::from_redis_value(settling).map_err(bad_reply)?;
        let certain = epoch && !settling;
        let mut answers: Vec<(HashMap<String, i64>, Option<Millis>)> =
            Vec::with_capacity(users.len());
        while let (Some(nodes), Some(seen)) = (it.next(), it.next()) {
            answers.push((
                redis::from_redis_value(nodes).map_err(bad_reply)?,
                redis::from_redis_value(seen).map_err(bad_reply)?,
            ));
        }
        if answers.len() != users.len() {
            return Err(chat_core::Error::unavailable_msg(
                "redis: presence reply has the wrong length",
            ));
        }
        Ok(users
            .iter()
            .zip(answers)
            .map(|(user, (nodes, seen))| entry(user, nodes, seen, certain))
            .collect())
    }

    async fn heartbeat(&self, node: &NodeId, now: Millis, ttl: Millis) -> Result<()> {
        let mut call = self.scripts.heartbeat.prepare_invoke();
        call.key(self.keys.beats())
            .key(self.keys.beat_at())
            .key(self.keys.epoch())
            .key(self.keys.settling())
            .arg(node.as_str())
            .arg(now)
            .arg(now.saturating_add(ttl))
            .arg(self.options.settle_ms(ttl));
        let mut con = self.commands.clone();
        let lost: i64 = within(
            "presence heartbeat",
            self.limit(),
            call.invoke_async(&mut con),
        )
        .await?;
        if lost == 1 {
            tracing::warn!(
                prefix = self.keys.prefix(),
                settle_ms = self.options.settle_ms(ttl),
                "redis had lost the deployment's presence (restart or flush); \
                 it settles while the nodes re-register"
            );
        }
        Ok(())
    }

    async fn restore(
        &self,
        node: &NodeId,
        connections: &[(UserId, u32)],
        now: Millis,
    ) -> Result<Vec<Presence>> {
        let mut con = self.commands.clone();
        let held: Vec<String> = within(
            "presence restore",
            self.limit(),
            redis::cmd("SMEMBERS")
                .arg(self.keys.node_users(node))
                .query_async(&mut con),
        )
        .await?;
        let listed: std::collections::HashSet<&str> =
            connections.iter().map(|(u, _)| u.as_str()).collect();
        let stale: Vec<String> = held
            .into_iter()
            .filter(|u| !listed.contains(u.as_str()))
            .collect();
        let counted: Vec<&(UserId, u32)> = connections.iter().filter(|(_, c)| *c > 0).collect();
        let mut changes = Vec::new();
        let (mut counted, mut stale) = (counted.as_slice(), stale.as_slice());
        while !counted.is_empty() || !stale.is_empty() {
            let (these, rest) = counted.split_at(counted.len().min(RESTORE_CHUNK));
            counted = rest;
            let room = RESTORE_CHUNK - these.len();
            let (gone, rest) = stale.split_at(stale.len().min(room));
            stale = rest;
            let mut call = self.scripts.restore.prepare_invoke();
            call.key(self.keys.node_users(node))
                .arg(self.keys.prefix())
                .arg(node.as_str())
                .arg(now)
                .arg(these.len());
            for (user, count) in these {
                call.arg(user.as_str()).arg(*count);
            }
            for user in gone {
                call.arg(user.as_str());
            }
            let flat: Vec<String> = within(
                "presence restore",
                self.limit(),
                call.invoke_async(&mut con),
            )
            .await?;
            for pair in flat.chunks_exact(2) {
                let user_id = UserId::from(pair[1].as_str());
                changes.push(if pair[0] == "on" {
                    Presence {
                        user_id,
                        status: PresenceStatus::Online,
                        last_seen: None,
                    }
                } else {
                    Presence {
                        user_id,
                        status: PresenceStatus::Offline,
                        last_seen: Some(now),
                    }
                });
            }
        }
        Ok(changes)
    }

    /// In chunks of `REAP_CHUNK` users (see `scripts/reap.lua`).
    async fn reap(&self, now: Millis) -> Result<Vec<Presence>> {
        let mut gone = Vec::new();
        loop {
            let mut con = self.commands.clone();
            let mut call = self.scripts.reap.prepare_invoke();
            call.key(self.keys.beats())
                .key(self.keys.beat_at())
                .arg(now)
                .arg(self.keys.prefix())
                .arg(REAP_CHUNK);
            let flat: Vec<String> =
                within("presence reap", self.limit(), call.invoke_async(&mut con)).await?;
            let Some((more, pairs)) = flat.split_first() else {
                return Err(chat_core::Error::unavailable_msg(
                    "redis: reap returned nothing",
                ));
            };
            for pair in pairs.chunks_exact(2) {
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
            if more != "1" {
                return Ok(gone);
            }
        }
    }
}
