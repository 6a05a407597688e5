//! [`RedisOptions`]: the key prefix and the timing of the Redis adapters.

use std::time::Duration;

/// How the adapters use Redis. `Default` suits a production deployment;
/// tests set a fresh `prefix` each.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Every key and channel starts with `{prefix}:`. Deployments (or tests)
    /// that share one Redis need different prefixes. Default `chat`.
    pub prefix: String,
    /// Longest wait for a TCP connection to Redis. Default 1 s.
    pub connect_timeout: Duration,
    /// Longest wait for an answer to a command (publish, subscribe, a
    /// presence script). Past it the call fails with `Unavailable`, so a
    /// hung Redis never hangs a sender. Default 2 s.
    pub response_timeout: Duration,
    /// First wait before the pub/sub connection tries to reconnect; it
    /// doubles (with jitter) up to `reconnect_max`. Default 50 ms.
    pub reconnect_min: Duration,
    /// Longest wait between reconnection attempts. Default 2 s.
    pub reconnect_max: Duration,
    /// How often an idle pub/sub connection is pinged, so a connection that
    /// died silently (no FIN, no RST) is noticed and replaced. Default 5 s.
    pub ping_every: Duration,
    /// Bus messages waiting for the engine before new ones are dropped
    /// (with a warning; recipients catch up at their next sync). Default 4096.
    pub bus_capacity: usize,
    /// PEM CA certificates that a `rediss://` (TLS) URL's server
    /// certificate must chain to. `None` (the default): the system's trust
    /// store. A `rediss://` URL may end in `#insecure` to skip verification
    /// (never in production).
    pub tls_root_ca: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "chat".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            ping_every: Duration::from_secs(5),
            bus_capacity: 4096,
            tls_root_ca: None,
        }
    }
}

impl RedisOptions {
    /// The defaults with `prefix`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// How long the deployment settles after Redis lost its data, for a
    /// heartbeat or lease `ttl` (ms): long enough for every running node to
    /// notice and re-register, by its next heartbeat or lease renewal
    /// (within `ttl`) or when its pub/sub connection comes back (within
    /// about two `reconnect_max`: one backoff wait and one failed try).
    pub fn settle_ms(&self, ttl: i64) -> i64 {
        let reconnect = i64::try_from(self.reconnect_max.as_millis()).unwrap_or(i64::MAX);
        ttl.saturating_add(reconnect.saturating_mul(2))
    }
}
