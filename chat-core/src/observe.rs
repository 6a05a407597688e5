//! What the engine reports about its work, for metrics: an [`Observer`] the
//! embedder hands to [`EngineBuilder::observer`](crate::engine::EngineBuilder::observer)
//! gets one [`Event`] per thing that happened, and [`EngineStats`] holds
//! the levels (gauges) it reads when it wants them.
//!
//! The engine knows no metrics library: the embedder turns events into
//! Prometheus counters and histograms, StatsD lines or log lines as it
//! likes (the example server uses `prometheus-client`). Events are reported
//! synchronously on the engine's own tasks, often under a lock: an observer
//! must only count (an atomic add, a histogram bucket), never block or
//! await.

use std::time::Duration;

use crate::engine::CloseReason;
use crate::error::Error;
use crate::model::MessageKind;

/// Receives the engine's [`Event`]s. Must be cheap and never block.
pub trait Observer: Send + Sync + 'static {
    /// One thing happened.
    fn event(&self, event: &Event<'_>);
}

/// The observer of an engine built without one: ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn event(&self, _event: &Event<'_>) {}
}

/// Something the engine did or saw. New variants may come in minor
/// releases: match with a `_` arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A client frame arrived; `kind` is its `type` (`send`, `ack`, …) or
    /// `invalid` for a frame that did not decode.
    FrameIn {
        /// The frame's `type`.
        kind: &'static str,
    },
    /// A server frame left a session's queue for its socket; `kind` is its
    /// `type` (`message`, `sent`, `presence`, …).
    FrameOut {
        /// The frame's `type`.
        kind: &'static str,
    },
    /// An entry (a message, an edit, a group event, …) was appended to the
    /// store: `latency` is the whole append, retries of a lost race for
    /// the conversation's head included. A `duplicate` is a retried send
    /// that was stored before (nothing new was written).
    Stored {
        /// What was stored.
        kind: MessageKind,
        /// How long the append took.
        latency: Duration,
        /// A retry of an entry stored before.
        duplicate: bool,
    },
    /// A send or message event failed before it was stored (the client got
    /// an error; with `unavailable` it retries).
    SendFailed {
        /// The contract's error code.
        code: &'static str,
    },
    /// One entry was handed to the sessions on this node that receive it
    /// (`sessions` of them, not counting the sending session, which got
    /// `sent`) in `latency`.
    FanOut {
        /// Sessions that got the entry.
        sessions: usize,
        /// How long handing it out took.
        latency: Duration,
    },
    /// A sync read `entries` entries from the store for one session.
    Synced {
        /// Entries handed to the session.
        entries: usize,
    },
    /// A session opened on this node.
    SessionOpened,
    /// A session ended, for `reason` ([`CloseReason::SlowConsumer`]: its
    /// queue overflowed and the transport closes it with code 4000).
    SessionClosed {
        /// Why.
        reason: CloseReason,
    },
    /// A write (a frame, or an HTTP call through
    /// [`Engine::charge_write`](crate::engine::Engine::charge_write)) was
    /// refused by the user's or the address's budget.
    RateLimited {
        /// `frame` or `http`.
        source: &'static str,
    },
    /// A login failed: wrong username or password.
    LoginFailed,
    /// A login was refused by the failed-login throttle without checking
    /// the password.
    LoginThrottled,
    /// A login or sign-up found the password-hashing queue full and was
    /// answered `unavailable`.
    HashQueueFull,
    /// A call to a store (see [`crate::store::Observed`]) ended.
    StoreCall {
        /// The backend's name as the embedder gave it (`postgres`, …).
        backend: &'a str,
        /// The trait method (`append`, `history`, …).
        op: &'static str,
        /// How long it took.
        latency: Duration,
        /// The error it returned, if any.
        error: Option<&'a Error>,
    },
    /// A publish to the bus ended (`ok: false`: the bus could not take it;
    /// other nodes catch up from the store).
    BusPublished {
        /// Whether the bus took it.
        ok: bool,
    },
    /// A message arrived from the bus.
    BusReceived,
    /// The bus connection came back after an outage: every local session
    /// syncs, and presence is restored.
    BusResumed,
    /// This node rewrote its users' presence from its own sessions (after
    /// the cluster store lost data or the bus reconnected); `changed` users
    /// turned online or offline in it.
    PresenceRestored {
        /// Users whose presence the restore changed.
        changed: usize,
    },
    /// A renewal of this node's id lease ended: `ok` when the lease is
    /// held (renewed or claimed back), `false` when the call failed or
    /// another node holds the id now.
    LeaseRenewed {
        /// Whether the node holds its id after it.
        ok: bool,
    },
}

/// The engine's levels at one moment (see [`crate::engine::Engine::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Open sessions on this node.
    pub sessions: usize,
    /// Bytes of ordered frames waiting in all sessions' outbound queues.
    pub queued_bytes: usize,
    /// Conversations this node follows (a member connected here).
    pub conversations: usize,
    /// Password hashes queued or running.
    pub hashes_pending: usize,
    /// Threads that hash passwords.
    pub hash_threads: usize,
    /// Logins and sign-ups that may wait for a hashing thread.
    pub hash_queue: usize,
    /// This node's id lease.
    pub lease: LeaseState,
    /// The node is draining (see [`crate::engine::Engine::drain`]).
    pub draining: bool,
}

/// Where this node stands with its worker id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeaseState {
    /// Renewed in time: the node mints message ids.
    #[default]
    Held,
    /// Not renewed for too long (the cluster store does not answer): sends
    /// answer `unavailable` until a renewal goes through.
    Expired,
    /// Another node took the id: this node stops.
    Lost,
}

impl LeaseState {
    /// The state as a number for a gauge: 1 held, 0 expired, -1 lost.
    pub fn as_gauge(self) -> i64 {
        match self {
            Self::Held => 1,
            Self::Expired => 0,
            Self::Lost => -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_states_read_as_gauge_values() {
        assert_eq!(LeaseState::Held.as_gauge(), 1);
        assert_eq!(LeaseState::Expired.as_gauge(), 0);
        assert_eq!(LeaseState::Lost.as_gauge(), -1);
        NoObserver.event(&Event::LoginFailed);
    }
}
