//! [`RedisNodeIds`] and [`RedisLease`]: each node's claim on its worker id,
//! one Redis key with a ttl per id.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::cluster::{NodeIds, NodeLease, Renewal};
use chat_core::id::MAX_WORKERS;
use chat_core::model::{Millis, now_millis};
use chat_core::{Error, Result};
use redis::aio::ConnectionManager;
use redis::{Script, Value};

use crate::conn::within;
use crate::keys::Keys;
use crate::options::RedisOptions;

/// How many times a claim waits for a settling deployment before it gives
/// up: Redis losing its data again and again within minutes is an outage.
const MAX_SETTLE_WAITS: u32 = 3;

/// [`NodeIds`] in Redis: `{prefix}:claim:{id}` holds `token|holder` with a
/// ttl, set with `SET NX PX` (in a script that also picks a free id when
/// none is named, starting at a random one so that nodes rarely race for
/// the same id). Renewal and release are scripts that act only on the
/// caller's own token.
///
/// # After Redis lost its data
///
/// A restart without persistence or a FLUSHALL erases every claim while
/// the nodes that held them keep running; they claim their ids back at
/// their next renewal or when their bus reconnects. A node that starts in
/// between must not take one of those ids first. So when the claim finds
/// the deployment's marker (`{prefix}:epoch`) missing and there is a sign
/// of running nodes (a node's beacon channel has a subscriber, which a
/// FLUSHALL leaves alone, or Redis itself started so recently that running
/// nodes may not have reconnected yet: within two `reconnect_max` and a
/// `connect_timeout`), it sets `{prefix}:settling` and every claim waits
/// until it expires ([`RedisOptions::settle_ms`] of the lease ttl). With no
/// such sign (a fresh deployment), nothing waits.
#[derive(Clone)]
pub struct RedisNodeIds {
    keys: Keys,
    options: RedisOptions,
    commands: ConnectionManager,
}

struct Scripts {
    claim: Script,
    renew: Script,
    release: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        claim: Script::new(include_str!("scripts/claim.lua")),
        renew: Script::new(include_str!("scripts/renew.lua")),
        release: Script::new(include_str!("scripts/release.lua")),
    })
}

impl std::fmt::Debug for RedisNodeIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNodeIds")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// What one run of the claim script answered.
enum Claimed {
    Ok(u16),
    Taken { holder: String, pttl: i64 },
    Wait(Duration),
    Full,
}

fn bad(what: &str) -> Error {
    Error::unavailable_msg(format!("redis: unexpected answer to {what}"))
}

fn text(value: &Value) -> Option<String> {
    redis::from_redis_value_ref::<String>(value).ok()
}

fn int(value: &Value) -> Option<i64> {
    redis::from_redis_value_ref::<i64>(value).ok()
}

/// The holder part of a claim's `token|holder` value.
fn holder_of(value: &str) -> &str {
    value.split_once('|').map_or(value, |(_, holder)| holder)
}

impl RedisNodeIds {
    /// Worker id claims in the Redis at `url`, under `options.prefix`.
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
        }
    }

    /// Whether nodes of this deployment may be running on this Redis: a
    /// beacon channel has a subscriber, or Redis started so recently that
    /// running nodes may still be reconnecting. When Redis will not say (a
    /// command is not allowed), assume they may.
    async fn nodes_may_run(&self) -> bool {
        let mut con = self.commands.clone();
        let limit = self.options.response_timeout;
        let beacons = within(
            "beacons",
            limit,
            redis::cmd("PUBSUB")
                .arg("CHANNELS")
                .arg(self.keys.beacons())
                .query_async::<Vec<String>>(&mut con),
        )
        .await;
        if !matches!(&beacons, Ok(b) if b.is_empty()) {
            return true;
        }
        let info = within(
            "info",
            limit,
            redis::cmd("INFO")
                .arg("server")
                .query_async::<String>(&mut con),
        )
        .await;
        let uptime_s = info.ok().and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("uptime_in_seconds:"))
                .and_then(|v| v.trim().parse::<i64>().ok())
        });
        let reconnecting = self.options.reconnect_max * 2 + self.options.connect_timeout;
        uptime_s.is_none_or(|s| u128::from(s.unsigned_abs()) * 1000 < reconnecting.as_millis())
    }

    async fn try_claim(&self, wanted: Option<u16>, value: &str, ttl: Millis) -> Result<Claimed> {
        let settle = self.options.settle_ms(ttl);
        let may_run = self.nodes_may_run().await;
        let mut call = scripts().claim.prepare_invoke();
        call.key(self.keys.epoch())
            .key(self.keys.settling())
            .arg(self.keys.prefix())
            .arg(wanted.map_or(-1, i64::from))
            .arg(value)
            .arg(ttl)
            .arg(rand::random_range(0..MAX_WORKERS))
            .arg(MAX_WORKERS)
            .arg(settle)
            .arg(if may_run { "1" } else { "0" })
            .arg(now_millis());
        let mut con = self.commands.clone();
        let answer: Vec<Value> = within(
            "claim",
            self.options.response_timeout,
            call.invoke_async(&mut con),
        )
        .await?;
        let kind = answer.first().and_then(text).ok_or_else(|| bad("claim"))?;
        let at = |i: usize| answer.get(i).ok_or_else(|| bad("claim"));
        Ok(match kind.as_str() {
            "ok" => Claimed::Ok(
                int(at(1)?)
                    .and_then(|id| u16::try_from(id).ok())
                    .ok_or_else(|| bad("claim"))?,
            ),
            "taken" => Claimed::Taken {
                holder: text(at(1)?).unwrap_or_default(),
                pttl: int(at(2)?).unwrap_or(-1),
            },
            "wait" => Claimed::Wait(Duration::from_millis(
                int(at(1)?)
                    .and_then(|ms| u64::try_from(ms).ok())
                    .unwrap_or(0),
            )),
            "full" => Claimed::Full,
            _ => return Err(bad("claim")),
        })
    }
}

#[async_trait]
impl NodeIds for RedisNodeIds {
    async fn claim(
        &self,
        wanted: Option<u16>,
        holder: &str,
        ttl: Millis,
    ) -> Result<Box<dyn NodeLease>> {
        if let Some(id) = wanted.filter(|id| *id >= MAX_WORKERS) {
            return Err(Error::invalid(format!(
                "node id {id} is out of range: at most {}",
                MAX_WORKERS - 1
            )));
        }
        let value = format!("{:016x}|{holder}", rand::random::<u64>());
        let mut waits = 0;
        loop {
            match self.try_claim(wanted, &value, ttl).await? {
                Claimed::Ok(id) => {
                    return Ok(Box::new(RedisLease {
                        key: self.keys.claim(id),
                        id,
                        value,
                        options: self.options.clone(),
                        commands: self.commands.clone(),
                    }));
                }
                Claimed::Taken { holder, pttl } => {
                    let id = wanted.unwrap_or_default();
                    return Err(Error::already_exists(format!(
                        "node id {id} (held by {}, for {pttl} more ms unless renewed)",
                        holder_of(&holder)
                    )));
                }
                Claimed::Full => {
                    return Err(Error::unavailable_msg(format!(
                        "all {MAX_WORKERS} node ids are in use"
                    )));
                }
                Claimed::Wait(wait) if waits < MAX_SETTLE_WAITS => {
                    waits += 1;
                    tracing::warn!(
                        ?wait,
                        "the cluster's Redis lost its state recently; waiting for running \
                         nodes to claim their ids again before claiming one"
                    );
                    tokio::time::sleep(wait + Duration::from_millis(10)).await;
                }
                Claimed::Wait(_) => {
                    return Err(Error::unavailable_msg(
                        "the cluster's Redis keeps losing its state; no node id claimed",
                    ));
                }
            }
        }
    }
}

/// One node's claim on its worker id in Redis, from [`RedisNodeIds`].
pub struct RedisLease {
    key: String,
    id: u16,
    value: String,
    options: RedisOptions,
    commands: ConnectionManager,
}

impl std::fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLease")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl NodeLease for RedisLease {
    fn worker_id(&self) -> u16 {
        self.id
    }

    async fn renew(&self, ttl: Millis) -> Result<Renewal> {
        let mut call = scripts().renew.prepare_invoke();
        call.key(&self.key).arg(&self.value).arg(ttl);
        let mut con = self.commands.clone();
        let answer: Vec<Value> = within(
            "renew node id",
            self.options.response_timeout,
            call.invoke_async(&mut con),
        )
        .await?;
        match answer.first().and_then(text).as_deref() {
            Some("held") => Ok(Renewal::Held),
            Some("reclaimed") => Ok(Renewal::Reclaimed),
            Some("lost") => Ok(Renewal::Lost {
                holder: answer
                    .get(1)
                    .and_then(text)
                    .map(|v| holder_of(&v).to_owned()),
            }),
            _ => Err(bad("renew")),
        }
    }

    async fn release(&self) -> Result<()> {
        let mut call = scripts().release.prepare_invoke();
        call.key(&self.key).arg(&self.value);
        let mut con = self.commands.clone();
        within(
            "release node id",
            self.options.response_timeout,
            call.invoke_async::<i64>(&mut con),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::holder_of;

    #[test]
    fn the_holder_is_what_follows_the_token() {
        assert_eq!(holder_of("00ff|ws://a:1/ws"), "ws://a:1/ws");
        assert_eq!(holder_of("00ff|a|b"), "a|b");
        assert_eq!(holder_of("no token"), "no token");
    }
}
