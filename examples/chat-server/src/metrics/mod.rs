//! `GET /metrics`: the engine's events ([`chat_core::observe`]) as
//! Prometheus counters and histograms, the engine's levels and the
//! process's own as gauges read at each scrape, in the Prometheus text
//! (OpenMetrics) format. Every metric is listed in docs/operations.md.
//!
//! The exporter lives here, in the server: chat-core only reports events
//! to an [`Observer`]; an embedder may count them with another library.

mod process;
mod route;

use std::sync::Arc;
use std::time::Duration;

use chat_core::engine::{CloseReason, Engine};
use chat_core::observe::{Event, Observer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use route::{METRICS_CONTENT_TYPE, routes};

/// One label.
type L1 = [(&'static str, &'static str); 1];
/// Two labels.
type L2 = [(&'static str, &'static str); 2];
/// Three labels.
type L3 = [(&'static str, &'static str); 3];

/// Every metric of the server, registered once. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    frames_in: Family<L1, Counter>,
    frames_out: Family<L1, Counter>,
    stored: Family<L1, Counter>,
    duplicates: Counter,
    send_failures: Family<L1, Counter>,
    append_seconds: Histogram,
    fanout_seconds: Histogram,
    deliveries: Counter,
    synced: Counter,
    sessions_opened: Counter,
    sessions_closed: Family<L1, Counter>,
    rate_limited: Family<L1, Counter>,
    login_failures: Counter,
    login_throttled: Counter,
    hash_rejected: Counter,
    store_calls: Family<L3, Counter>,
    store_seconds: Family<L2, Histogram>,
    bus_published: Family<L1, Counter>,
    bus_received: Counter,
    bus_resumed: Counter,
    presence_restores: Counter,
    presence_restore_changes: Counter,
    lease_renewals: Family<L1, Counter>,
    push: Family<L1, Counter>,
    gauges: Gauges,
    process: process::ProcessMetrics,
}

/// Levels read from the engine at each scrape.
#[derive(Default)]
struct Gauges {
    connections: Gauge,
    queued_bytes: Gauge,
    conversations: Gauge,
    hashes_pending: Gauge,
    hash_threads: Gauge,
    hash_queue: Gauge,
    lease: Gauge,
    draining: Gauge,
}

/// Buckets for latencies from 100 µs to about 13 s (×2 each).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 18)
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The registry's content is what `/metrics` shows.
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut m = Self {
            frames_in: Family::default(),
            frames_out: Family::default(),
            stored: Family::default(),
            duplicates: Counter::default(),
            send_failures: Family::default(),
            append_seconds: Histogram::new(latency_buckets()),
            fanout_seconds: Histogram::new(exponential_buckets(0.000_001, 4.0, 12)),
            deliveries: Counter::default(),
            synced: Counter::default(),
            sessions_opened: Counter::default(),
            sessions_closed: Family::default(),
            rate_limited: Family::default(),
            login_failures: Counter::default(),
            login_throttled: Counter::default(),
            hash_rejected: Counter::default(),
            store_calls: Family::default(),
            store_seconds: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            bus_published: Family::default(),
            bus_received: Counter::default(),
            bus_resumed: Counter::default(),
            presence_restores: Counter::default(),
            presence_restore_changes: Counter::default(),
            lease_renewals: Family::default(),
            push: Family::default(),
            gauges: Gauges::default(),
            process: process::ProcessMetrics::default(),
            registry: Registry::default(),
        };
        let r = &mut m.registry;
        let g = &m.gauges;
        r.register(
            "chat_connections",
            "WebSocket sessions open on this node",
            g.connections.clone(),
        );
        r.register(
            "chat_frames_in",
            "Client frames received, by type (invalid: did not decode)",
            m.frames_in.clone(),
        );
        r.register(
            "chat_frames_out",
            "Server frames written to sockets, by type",
            m.frames_out.clone(),
        );
        r.register(
            "chat_messages_stored",
            "Entries appended to the store, by kind (text, edit, delete, reaction, group_event)",
            m.stored.clone(),
        );
        r.register(
            "chat_messages_duplicate",
            "Retried sends answered with the entry stored before (nothing new written)",
            m.duplicates.clone(),
        );
        r.register(
            "chat_send_failures",
            "Sends, edits, deletes and reactions answered with an error, by error code",
            m.send_failures.clone(),
        );
        r.register(
            "chat_store_append_seconds",
            "Time to append one entry to the store (the wait before `sent`), retries included",
            m.append_seconds.clone(),
        );
        r.register(
            "chat_fanout_seconds",
            "Time to hand one entry to every receiving session on this node",
            m.fanout_seconds.clone(),
        );
        r.register(
            "chat_deliveries",
            "Entries handed to sessions live (one per receiving session)",
            m.deliveries.clone(),
        );
        r.register(
            "chat_synced_entries",
            "Entries handed to sessions by sync (read from the store)",
            m.synced.clone(),
        );
        r.register(
            "chat_sessions_opened",
            "WebSocket sessions opened",
            m.sessions_opened.clone(),
        );
        r.register(
            "chat_sessions_closed",
            "WebSocket sessions closed, by reason (slow_consumer: queue overflow, close code 4000)",
            m.sessions_closed.clone(),
        );
        r.register(
            "chat_outbound_queued_bytes",
            "Bytes of ordered frames waiting in all sessions' outbound queues",
            g.queued_bytes.clone(),
        );
        r.register(
            "chat_rate_limited",
            "Writes refused by a user's or address's budget, by source (frame, http)",
            m.rate_limited.clone(),
        );
        r.register(
            "chat_login_failures",
            "Logins refused for a wrong username or password",
            m.login_failures.clone(),
        );
        r.register(
            "chat_login_throttled",
            "Logins refused by the failed-login throttle",
            m.login_throttled.clone(),
        );
        r.register(
            "chat_password_hash_pending",
            "Password hashes queued or running",
            g.hashes_pending.clone(),
        );
        r.register(
            "chat_password_hash_threads",
            "Threads that hash passwords",
            g.hash_threads.clone(),
        );
        r.register(
            "chat_password_hash_queue_capacity",
            "Logins and sign-ups that may wait for a hashing thread",
            g.hash_queue.clone(),
        );
        r.register(
            "chat_password_hash_rejected",
            "Logins and sign-ups answered 503 because the hashing queue was full",
            m.hash_rejected.clone(),
        );
        r.register(
            "chat_store_calls",
            "Store calls, by backend, call and outcome (ok or the error code)",
            m.store_calls.clone(),
        );
        r.register(
            "chat_store_call_seconds",
            "Store call latency, by backend and call",
            m.store_seconds.clone(),
        );
        r.register(
            "chat_bus_published",
            "Publishes to the cluster bus, by outcome (ok, failed)",
            m.bus_published.clone(),
        );
        r.register(
            "chat_bus_received",
            "Messages received from other nodes on the cluster bus",
            m.bus_received.clone(),
        );
        r.register(
            "chat_bus_resumed",
            "Times the bus connection came back after an outage",
            m.bus_resumed.clone(),
        );
        r.register(
            "chat_node_lease_state",
            "This node's id lease: 1 held, 0 expired (sends answer unavailable), -1 lost",
            g.lease.clone(),
        );
        r.register(
            "chat_node_lease_renewals",
            "Renewals of this node's id lease, by outcome (ok, failed)",
            m.lease_renewals.clone(),
        );
        r.register(
            "chat_presence_restores",
            "Times this node rewrote its users' presence from its sessions",
            m.presence_restores.clone(),
        );
        r.register(
            "chat_presence_restore_changes",
            "Users whose presence a restore changed",
            m.presence_restore_changes.clone(),
        );
        r.register(
            "chat_conversations_followed",
            "Conversations with a member connected to this node",
            g.conversations.clone(),
        );
        r.register(
            "chat_push_webhook",
            "Push webhook posts, by outcome (delivered, retried: one failed try to be \
             repeated, failed: given up after the last try, dropped: the queue was full)",
            m.push.clone(),
        );
        r.register(
            "chat_draining",
            "1 while this node drains (taken out of service)",
            g.draining.clone(),
        );
        m.process.register(r);
        m
    }

    /// Counts one push webhook outcome (see `chat_push_webhook`).
    pub(crate) fn push_outcome(&self, outcome: crate::push::PushOutcome) {
        self.push
            .get_or_create(&[("outcome", outcome.label())])
            .inc();
    }

    /// The text exposition of every metric, with the gauges read from
    /// `engine` and the process now.
    pub fn render(&self, engine: &Engine) -> String {
        let stats = engine.stats();
        let g = &self.gauges;
        g.connections.set(as_i64(stats.sessions));
        g.queued_bytes.set(as_i64(stats.queued_bytes));
        g.conversations.set(as_i64(stats.conversations));
        g.hashes_pending.set(as_i64(stats.hashes_pending));
        g.hash_threads.set(as_i64(stats.hash_threads));
        g.hash_queue.set(as_i64(stats.hash_queue));
        g.lease.set(stats.lease.as_gauge());
        g.draining.set(i64::from(stats.draining));
        self.process.refresh();
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The backend label: the names the server gives its stores (anything
/// else is `other`, so a label never holds free text).
fn backend_label(backend: &str) -> &'static str {
    match backend {
        "memory" => "memory",
        "sqlite" => "sqlite",
        "postgres" => "postgres",
        "cassandra" => "cassandra",
        _ => "other",
    }
}

fn close_label(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::SlowConsumer => "slow_consumer",
        CloseReason::Shutdown => "shutdown",
        CloseReason::Disconnected => "disconnected",
        CloseReason::Revoked => "revoked",
        CloseReason::Resync => "resync",
        CloseReason::Draining => "draining",
        _ => "other",
    }
}

fn ok_label(ok: bool) -> L1 {
    [("outcome", if ok { "ok" } else { "failed" })]
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Observer for Metrics {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::FrameIn { kind } => {
                self.frames_in.get_or_create(&[("type", kind)]).inc();
            }
            Event::FrameOut { kind } => {
                self.frames_out.get_or_create(&[("type", kind)]).inc();
            }
            Event::Stored {
                kind,
                latency,
                duplicate,
            } => {
                self.append_seconds.observe(seconds(*latency));
                if *duplicate {
                    self.duplicates.inc();
                } else {
                    self.stored.get_or_create(&[("kind", kind.as_str())]).inc();
                }
            }
            Event::SendFailed { code } => {
                self.send_failures.get_or_create(&[("code", code)]).inc();
            }
            Event::FanOut { sessions, latency } => {
                self.fanout_seconds.observe(seconds(*latency));
                self.deliveries.inc_by(*sessions as u64);
            }
            Event::Synced { entries } => {
                self.synced.inc_by(*entries as u64);
            }
            Event::SessionOpened => {
                self.sessions_opened.inc();
            }
            Event::SessionClosed { reason } => {
                self.sessions_closed
                    .get_or_create(&[("reason", close_label(*reason))])
                    .inc();
            }
            Event::RateLimited { source } => {
                self.rate_limited.get_or_create(&[("source", source)]).inc();
            }
            Event::LoginFailed => {
                self.login_failures.inc();
            }
            Event::LoginThrottled => {
                self.login_throttled.inc();
            }
            Event::HashQueueFull => {
                self.hash_rejected.inc();
            }
            Event::StoreCall {
                backend,
                op,
                latency,
                error,
            } => {
                let backend = backend_label(backend);
                let outcome = error.map_or("ok", |e| e.code());
                self.store_calls
                    .get_or_create(&[("backend", backend), ("op", op), ("outcome", outcome)])
                    .inc();
                self.store_seconds
                    .get_or_create(&[("backend", backend), ("op", op)])
                    .observe(seconds(*latency));
            }
            Event::BusPublished { ok } => {
                self.bus_published.get_or_create(&ok_label(*ok)).inc();
            }
            Event::BusReceived => {
                self.bus_received.inc();
            }
            Event::BusResumed => {
                self.bus_resumed.inc();
            }
            Event::PresenceRestored { changed } => {
                self.presence_restores.inc();
                self.presence_restore_changes.inc_by(*changed as u64);
            }
            Event::LeaseRenewed { ok } => {
                self.lease_renewals.get_or_create(&ok_label(*ok)).inc();
            }
            _ => {}
        }
    }
}

/// The server's metrics, shared by the engine (as its observer) and the
/// `/metrics` routes.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_move_their_counters() {
        let metrics = Metrics::new();
        let engine = Engine::builder().build().await.unwrap();
        metrics.event(&Event::FrameIn { kind: "send" });
        metrics.event(&Event::SessionClosed {
            reason: CloseReason::SlowConsumer,
        });
        let error = chat_core::Error::unavailable_msg("down");
        metrics.event(&Event::StoreCall {
            backend: "postgres",
            op: "append",
            latency: Duration::from_millis(3),
            error: Some(&error),
        });
        let text = metrics.render(&engine);
        for line in [
            r#"chat_frames_in_total{type="send"} 1"#,
            r#"chat_sessions_closed_total{reason="slow_consumer"} 1"#,
            r#"chat_store_calls_total{backend="postgres",op="append",outcome="unavailable"} 1"#,
            "chat_connections 0",
            "chat_node_lease_state 1",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
