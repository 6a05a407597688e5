//! [`Operations`]: the flags an operator runs the server with: TLS to the
//! clients and to the backends, logs, metrics and the drain on SIGTERM
//! (docs/operations.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, with the span fields (conn, user, device)
    /// as keys: for a log shipper.
    Json,
}

/// TLS, logs, metrics and draining. Every flag also comes from the
/// environment.
#[derive(Clone, Debug, Args)]
pub struct Operations {
    /// PEM certificate chain for HTTPS and WSS on `--listen` (with
    /// `--tls-key`). Without it the server speaks plain HTTP.
    #[arg(long, env = "CHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "CHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM file of CA certificates trusted for TLS to the backends
    /// (PostgreSQL with `sslmode=require`, Redis with `rediss://`,
    /// Cassandra with `?tls=true`), besides the system's trust store.
    #[arg(long, env = "CHAT_BACKEND_CA")]
    pub backend_ca: Option<PathBuf>,
    /// `text` or `json`.
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Which log lines to write, as `RUST_LOG` takes it (`info`,
    /// `chat_core=debug,info`). Default: `RUST_LOG`, else `info`.
    #[arg(long, env = "CHAT_LOG")]
    pub log_filter: Option<String>,
    /// Also serve `GET /metrics` on this address (plain HTTP, for a
    /// private network): it answers even when the main listener is at its
    /// connection cap.
    #[arg(long, env = "CHAT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve `GET /metrics` on `--listen` too, as the contract says. Set to
    /// false only when `--metrics-listen` serves them to Prometheus.
    #[arg(
        long,
        env = "CHAT_METRICS_ON_MAIN",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub metrics_on_main: bool,
    /// Seconds the node gives its clients on SIGTERM to finish what they
    /// sent and move to another node, before it closes the rest (keep it
    /// below the service manager's stop timeout: systemd's
    /// TimeoutStopSec, Kubernetes' terminationGracePeriodSeconds).
    #[arg(long, env = "CHAT_DRAIN_GRACE", default_value_t = 20.0)]
    pub drain_grace_secs: f64,
}

impl Default for Operations {
    fn default() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            backend_ca: None,
            log_format: LogFormat::Text,
            log_filter: None,
            metrics_listen: None,
            metrics_on_main: true,
            drain_grace_secs: 20.0,
        }
    }
}

impl Operations {
    /// The drain's grace period.
    pub fn drain_grace(&self) -> Duration {
        Duration::try_from_secs_f64(self.drain_grace_secs.max(0.0)).unwrap_or(Duration::MAX)
    }

    /// Whether the main listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }
}
