//! [`Protection`]: the flags that keep a public server standing: timeouts,
//! connection caps, the WebSocket Origin allow-list, write budgets, password
//! hashing and login throttling. docs/security.md explains each default.

use std::time::Duration;

use chat_core::engine::{BudgetRate, LoginThrottleConfig};
use clap::Args;

/// Abuse limits of the server. Every flag also comes from the environment.
#[derive(Clone, Debug, Args)]
pub struct Protection {
    /// Seconds a client has to send a request's whole header, from its first
    /// byte.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout_secs: f64,
    /// Seconds a connection may wait with no request in progress (after
    /// accept, or between two keep-alive requests) before it is closed.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout_secs: f64,
    /// Seconds a client has to send a whole request body.
    #[arg(long, env = "CHAT_BODY_TIMEOUT", default_value_t = 30.0)]
    pub body_timeout_secs: f64,
    /// Seconds a write to a client may stay blocked (the client reads
    /// nothing) before its connection, HTTP or WebSocket, is closed.
    #[arg(long, env = "CHAT_WRITE_TIMEOUT", default_value_t = 30.0)]
    pub write_timeout_secs: f64,
    /// Most open connections (HTTP and WebSocket) of the whole server; past
    /// it a new one is answered 503. 0: the process's open-file limit less
    /// a reserve for the store, logs and the refusals themselves.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Most open connections from one client address (an IPv6 client counts
    /// by its /64); past it a new one is answered 429. 0: no cap.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_ADDR", default_value_t = 64)]
    pub max_connections_per_addr: usize,
    /// Most WebSockets of one user on this node; past it the upgrade is
    /// refused with 429. 0: no cap.
    #[arg(long, env = "CHAT_MAX_SOCKETS_PER_USER", default_value_t = 16)]
    pub max_sockets_per_user: usize,
    /// Origins allowed to open a WebSocket from a browser, comma-separated
    /// (`https://chat.example.com`), or `*` for any. Empty (the default):
    /// only the server's own origin. Clients that send no Origin (not a
    /// browser) are always allowed.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Writes per second one user may make on average, HTTP and WebSocket
    /// together, over all its connections on this node. 0: no budget.
    #[arg(long, env = "CHAT_USER_RATE", default_value_t = 10.0)]
    pub user_rate: f64,
    /// Writes one user may make at once above `--user-rate`.
    #[arg(long, env = "CHAT_USER_BURST", default_value_t = 60.0)]
    pub user_burst: f64,
    /// Writes per second one client address may make on average (all its
    /// users together). 0: no budget.
    #[arg(long, env = "CHAT_ADDR_RATE", default_value_t = 50.0)]
    pub addr_rate: f64,
    /// Writes one client address may make at once above `--addr-rate`.
    #[arg(long, env = "CHAT_ADDR_BURST", default_value_t = 200.0)]
    pub addr_burst: f64,
    /// Password hashes computed at once. 0: one per CPU core.
    #[arg(long, env = "CHAT_HASH_THREADS", default_value_t = 0)]
    pub hash_threads: usize,
    /// Logins and sign-ups that may wait for a hashing thread; past it they
    /// are answered 503 `unavailable`.
    #[arg(long, env = "CHAT_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,
    /// Failed logins of one username, or from one address, before the
    /// throttle starts.
    #[arg(long, env = "CHAT_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,
    /// Longest lockout of the login throttle, in seconds (it doubles from 1 s
    /// with each further failure up to this).
    #[arg(long, env = "CHAT_LOGIN_MAX_LOCKOUT", default_value_t = 900)]
    pub login_max_lockout_secs: u64,
}

impl Default for Protection {
    /// The defaults of every flag, ignoring the environment.
    fn default() -> Self {
        Self {
            header_timeout_secs: 10.0,
            idle_timeout_secs: 60.0,
            body_timeout_secs: 30.0,
            write_timeout_secs: 30.0,
            max_connections: 0,
            max_connections_per_addr: 64,
            max_sockets_per_user: 16,
            allowed_origins: Vec::new(),
            user_rate: 10.0,
            user_burst: 60.0,
            addr_rate: 50.0,
            addr_burst: 200.0,
            hash_threads: 0,
            hash_queue: 64,
            login_free_failures: 5,
            login_max_lockout_secs: 900,
        }
    }
}

impl Protection {
    /// No budgets, caps or throttles: for load generators and benchmarks
    /// on one machine, never for a public server. Timeouts stay.
    pub fn unlimited() -> Self {
        Self {
            max_connections_per_addr: 0,
            max_sockets_per_user: 0,
            user_rate: 0.0,
            addr_rate: 0.0,
            login_free_failures: u32::MAX,
            hash_queue: 100_000,
            ..Self::default()
        }
    }

    /// `--header-timeout-secs` as a duration.
    pub fn header_timeout(&self) -> Duration {
        secs(self.header_timeout_secs)
    }

    /// `--idle-timeout-secs` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        secs(self.idle_timeout_secs)
    }

    /// `--body-timeout-secs` as a duration.
    pub fn body_timeout(&self) -> Duration {
        secs(self.body_timeout_secs)
    }

    /// `--write-timeout-secs` as a duration.
    pub fn write_timeout(&self) -> Duration {
        secs(self.write_timeout_secs)
    }

    /// The per-user write budget, `None` when `--user-rate` is 0.
    pub fn user_budget(&self) -> Option<BudgetRate> {
        BudgetRate::new(self.user_rate, self.user_burst)
    }

    /// The per-address write budget, `None` when `--addr-rate` is 0.
    pub fn addr_budget(&self) -> Option<BudgetRate> {
        BudgetRate::new(self.addr_rate, self.addr_burst)
    }

    /// The login throttle these flags describe.
    pub fn login_throttle(&self) -> LoginThrottleConfig {
        LoginThrottleConfig {
            free_failures: self.login_free_failures,
            max_lockout: Duration::from_secs(self.login_max_lockout_secs.max(1)),
            ..LoginThrottleConfig::default()
        }
    }
}

/// Seconds as a duration; a negative or not-a-number value counts as
/// the smallest timeout (1 ms), never as "wait forever".
fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_millis(1))
}
