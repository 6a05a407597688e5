//! [`LiveSession`]: the driver session in use, replaced by a fresh one when
//! no node has been reachable.
//!
//! Why the store does this instead of leaving it to the driver: scylla 1.5
//! refills a node's connection pool on an exponential backoff that grows to
//! 10 s (±15% jitter) while the node refuses, and its reconnect policy can
//! only be changed behind the `scylla_unstable` cfg. A node restarted after
//! half a minute therefore stays unused for up to 11.5 s after it accepts
//! connections again, and every request in that time fails. A new session
//! connects as soon as a contact point accepts. So a watchdog looks once
//! per [`reconnect_interval`](crate::CassandraConfig::reconnect_interval):
//! while at least one node has a connection it does nothing (the driver
//! routes around down nodes itself); when none has, it builds a new session
//! and, once one connects, swaps it in. Prepared statements need nothing:
//! they are not tied to a session, and a node that does not know one
//! answers UNPREPARED, on which the driver prepares it again and retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The session requests go through, and the watchdog that replaces it.
pub(crate) struct LiveSession {
    shared: Arc<Shared>,
    watchdog: JoinHandle<()>,
}

/// What the store and its watchdog share.
struct Shared {
    current: ArcSwap<Session>,
    /// Sessions swapped in by the watchdog since connect.
    replaced: AtomicU64,
}

impl LiveSession {
    /// Serves requests through `session` and starts the watchdog, which
    /// builds replacements with `builder` (the one that built `session`),
    /// each attempt bounded by `build_timeout`. Needs a Tokio runtime.
    pub(crate) fn start(
        session: Session,
        builder: SessionBuilder,
        interval: Duration,
        build_timeout: Duration,
    ) -> Self {
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(session),
            replaced: AtomicU64::new(0),
        });
        let watchdog = tokio::spawn(watch(
            Arc::downgrade(&shared),
            builder,
            interval,
            build_timeout,
        ));
        Self { shared, watchdog }
    }

    /// The session to run the next request on. A request keeps the session
    /// it started on even if the watchdog swaps it meanwhile.
    pub(crate) fn get(&self) -> Arc<Session> {
        self.shared.current.load_full()
    }

    /// How many times the watchdog replaced the session.
    pub(crate) fn replaced(&self) -> u64 {
        self.shared.replaced.load(Ordering::Relaxed)
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

/// Whether the driver holds an open connection to any node.
fn connected(session: &Session) -> bool {
    session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .any(|node| node.is_connected())
}

/// The watchdog loop; ends when the store is dropped.
async fn watch(
    shared: Weak<Shared>,
    builder: SessionBuilder,
    interval: Duration,
    build_timeout: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    // After a slow build attempt, wait a whole interval again rather than
    // trying twice in a row.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut down_since = None;
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if connected(&shared.current.load()) {
            if let Some(since) = down_since.take() {
                tracing::info!(
                    after = ?tokio::time::Instant::now().duration_since(since),
                    "cassandra: the driver reconnected by itself"
                );
            }
            continue;
        }
        let since = *down_since.get_or_insert_with(tokio::time::Instant::now);
        match tokio::time::timeout(build_timeout, builder.build()).await {
            Ok(Ok(session)) => {
                shared.current.store(Arc::new(session));
                shared.replaced.fetch_add(1, Ordering::Relaxed);
                down_since = None;
                tracing::info!(
                    after = ?tokio::time::Instant::now().duration_since(since),
                    "cassandra: no node was reachable; a new session connected"
                );
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cassandra: no node reachable yet");
            }
            Err(_) => {
                tracing::debug!(?build_timeout, "cassandra: new session timed out");
            }
        }
    }
}
