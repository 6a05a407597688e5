//! [`Config`]: the command line and environment of the server, as the
//! contract's "Running it" names them, and [`Protection`]: its abuse limits.

mod file;
mod operations;
mod protection;
mod secrets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_core::Retention;
use clap::Parser;

pub use operations::{LogFormat, Operations};
pub use protection::Protection;
pub use secrets::{MIN_JWT_SECRET_BYTES, redact_url};

/// How the server runs. Every flag can also come from the environment.
///
/// Flags that may carry a secret (`--store`, `--cluster`, `--push-webhook`,
/// `--jwt-secret`) never show their environment value in `--help`, and
/// `Debug` prints them redacted.
#[derive(Clone, Parser)]
#[command(name = "chat-server", version, about = "The example chat server")]
pub struct Config {
    /// A TOML file of settings (see docs/operations.md): each key is a
    /// flag's name with `_` for `-`; flags and the environment override it.
    #[arg(long, env = "CHAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP API, the WebSocket and the web page.
    #[arg(long, env = "CHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` (the default, `./chat-data/chat.db`, survives
    /// restarts with nothing to install), `memory` (nothing survives a
    /// restart: for tests), `postgres://…` or `cassandra://HOST:PORT/KEYSPACE`.
    #[arg(
        long,
        env = "CHAT_STORE",
        default_value = crate::stores::DEFAULT_STORE,
        hide_env_values = true
    )]
    pub store: String,
    /// `forever` or `until_delivered`.
    #[arg(long, env = "CHAT_RETENTION", default_value = "forever")]
    pub retention: Retention,
    /// Under until_delivered, a device that has not connected for this many
    /// days holds no message back any more.
    #[arg(long, env = "CHAT_DEVICE_TTL_DAYS", default_value_t = 30)]
    pub device_ttl_days: u64,
    /// `redis://…`: join other nodes through Redis. Without it, one node.
    #[arg(long, env = "CHAT_CLUSTER", hide_env_values = true)]
    pub cluster: Option<String>,
    /// Key prefix of this deployment in the `--cluster` Redis: nodes with
    /// the same prefix form one service.
    #[arg(long, env = "CHAT_CLUSTER_PREFIX", default_value = "chat")]
    pub cluster_prefix: String,
    /// This node's Snowflake worker id (0..1024); the node is named `node-N`
    /// in presence, bus and discovery. With `--cluster` the node claims it
    /// in Redis and refuses to start while another live node holds it;
    /// without `--node-id` it claims a free one. One node alone: default 0.
    #[arg(long, env = "CHAT_NODE_ID")]
    pub node_id: Option<u16>,
    /// Milliseconds between this node's heartbeats; a node silent for three
    /// of them counts as dead and its users go offline.
    #[arg(long, env = "CHAT_HEARTBEAT_MS", default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// Milliseconds one renewal of this node's claim on its id lasts
    /// (renewed at every heartbeat; default three heartbeats). The node
    /// stops minting message ids when it could not renew for this long
    /// minus one heartbeat, and a crashed node's id is free after it.
    #[arg(long, env = "CHAT_NODE_LEASE_MS")]
    pub node_lease_ms: Option<u64>,
    /// The WebSocket URL that `chat_url` hands out; default `ws://<listen>/ws`.
    #[arg(long, env = "CHAT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// POST a notification here for each recipient with no open connection.
    #[arg(long, env = "CHAT_PUSH_WEBHOOK", hide_env_values = true)]
    pub push_webhook: Option<String>,
    /// HS256 secret of the tokens, at least 32 bytes; without it, a random
    /// one per start (refused with `--cluster`: every node must share it).
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A file holding `--jwt-secret` (its first line; a trailing newline is
    /// not part of it), so the secret stays out of the command line, the
    /// environment and the config file: a systemd credential, a Kubernetes
    /// secret volume. Read once at start.
    #[arg(long, env = "CHAT_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    pub jwt_secret_file: Option<PathBuf>,
    /// How long a token stays valid, in seconds (default 7 days).
    #[arg(long, env = "CHAT_TOKEN_TTL", default_value_t = 7 * 24 * 3600)]
    pub token_ttl_secs: u64,
    /// Largest WebSocket message and HTTP request body, in bytes.
    #[arg(long, env = "CHAT_MAX_FRAME", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// Seconds between the server's WebSocket pings (a peer silent for as
    /// long after a ping is closed).
    #[arg(long, env = "CHAT_PING_INTERVAL", default_value_t = 20)]
    pub ping_interval_secs: u64,
    /// Cheapest argon2 settings: for tests only, never in production.
    #[arg(long, env = "CHAT_INSECURE_FAST_HASHING", hide = true)]
    pub insecure_fast_hashing: bool,
    /// Timeouts, connection caps, budgets, hashing and login throttling.
    #[command(flatten)]
    pub protection: Protection,
    /// TLS, logs, metrics and draining.
    #[command(flatten)]
    pub ops: Operations,
}

impl Default for Config {
    /// The defaults of every flag, ignoring the environment.
    fn default() -> Self {
        Self {
            config: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: crate::stores::DEFAULT_STORE.to_owned(),
            retention: Retention::Forever,
            device_ttl_days: 30,
            cluster: None,
            cluster_prefix: "chat".to_owned(),
            node_id: None,
            heartbeat_ms: 5000,
            node_lease_ms: None,
            public_url: None,
            push_webhook: None,
            jwt_secret: None,
            jwt_secret_file: None,
            token_ttl_secs: 7 * 24 * 3600,
            max_frame_bytes: 64 * 1024,
            ping_interval_secs: 20,
            insecure_fast_hashing: false,
            protection: Protection::default(),
            ops: Operations::default(),
        }
    }
}

impl Config {
    /// The WebSocket settings this configuration asks for.
    pub fn ws(&self) -> chat_transport_ws::WsConfig {
        let every = Duration::from_secs(self.ping_interval_secs.max(1));
        chat_transport_ws::WsConfig {
            max_message_bytes: self.max_frame_bytes,
            max_write_buffer_bytes: 4 * self.max_frame_bytes,
            ping_every: every,
            pong_timeout: every,
            max_sockets_per_user: nonzero(self.protection.max_sockets_per_user),
            origins: chat_transport_ws::OriginPolicy::from_list(&self.protection.allowed_origins),
            ..Default::default()
        }
    }

    /// The engine limits: the defaults, with this configuration's heartbeat
    /// (every `heartbeat_ms`, alive for three of them) and id lease.
    pub fn limits(&self) -> chat_core::engine::Limits {
        let every = Duration::from_millis(self.heartbeat_ms.max(1));
        let p = &self.protection;
        chat_core::engine::Limits {
            heartbeat_every: every,
            heartbeat_ttl: every * 3,
            user_budget: p.user_budget(),
            addr_budget: p.addr_budget(),
            login_throttle: p.login_throttle(),
            hash_threads: p.hash_threads,
            hash_queue: p.hash_queue,
            id_lease: self.node_lease_ms.map_or(every * 3, Duration::from_millis),
            device_ttl: Duration::from_secs(self.device_ttl_days.max(1) * 24 * 3600),
            ..Default::default()
        }
    }

    /// `chat_url` for this node: `--public-url`, or `ws://<addr>/ws`
    /// (`wss://` with TLS) for the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        let scheme = if self.ops.tls() { "wss" } else { "ws" };
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}/ws"))
    }
}

/// `None` for 0 (no cap).
fn nonzero(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written out by hand so that no secret reaches a log through `{:?}`.
        f.debug_struct("Config")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field("store", &redact_url(&self.store))
            .field("retention", &self.retention)
            .field("cluster", &self.cluster.as_deref().map(redact_url))
            .field("cluster_prefix", &self.cluster_prefix)
            .field("node_id", &self.node_id)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("public_url", &self.public_url)
            .field(
                "push_webhook",
                &self.push_webhook.as_deref().map(redact_url),
            )
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_secret_file", &self.jwt_secret_file)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("ping_interval_secs", &self.ping_interval_secs)
            .field("insecure_fast_hashing", &self.insecure_fast_hashing)
            .field("protection", &self.protection)
            .field("ops", &self.ops)
            .finish()
    }
}

/// The retention mode as the contract spells it.
pub fn retention_name(r: Retention) -> &'static str {
    match r {
        Retention::Forever => "forever",
        Retention::UntilDelivered => "until_delivered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_contract_defaults() {
        let c = Config::try_parse_from(["chat-server"]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store, crate::stores::DEFAULT_STORE);
        assert_eq!(c.retention, Retention::Forever);
        let c = Config::try_parse_from([
            "chat-server",
            "--retention",
            "until_delivered",
            "--listen",
            "127.0.0.1:0",
            "--node-id",
            "3",
        ])
        .unwrap();
        assert_eq!(c.retention, Retention::UntilDelivered);
        assert_eq!(c.node_id, Some(3));
        assert_eq!(
            Config::try_parse_from(["chat-server"]).unwrap().node_id,
            None,
            "no --node-id: a free one in a cluster, 0 alone"
        );
        assert!(Config::try_parse_from(["chat-server", "--retention", "sometimes"]).is_err());
        let limits = Config::try_parse_from(["chat-server", "--heartbeat-ms", "200"])
            .unwrap()
            .limits();
        assert_eq!(
            limits.id_lease,
            Duration::from_millis(600),
            "three heartbeats by default"
        );
        let limits = Config::try_parse_from(["chat-server", "--node-lease-ms", "9000"])
            .unwrap()
            .limits();
        assert_eq!(limits.id_lease, Duration::from_secs(9));
        assert_eq!(
            c.public_url_for("127.0.0.1:9000".parse().unwrap()),
            "ws://127.0.0.1:9000/ws"
        );
    }
}
