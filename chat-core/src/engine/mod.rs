//! The [`Engine`]: ties storage, cluster, push and auth together, and the
//! [`Session`] that one client connection drives.
//!
//! Each thing a client or an embedder can do is an action with a file of its
//! own under `actions/` (send, message events, ack, read, typing, history,
//! presence, sync, groups, invites, blocks, devices, accounts). The
//! [`Session`] only decodes a frame, checks the budget, calls the action and
//! answers.
//!
//! The send path, as data: frame decoded → membership checked (from what
//! this node knows of the conversation) → an id above the conversation's
//! head assigned → appended to the store, conditional on the head (the
//! `sent` answer waits for this; a lost race takes a new id and tries
//! again) → the entry, with the link to the entry before it, goes through
//! this node's chain of the conversation to the local sessions, and once to
//! the bus topic of the conversation for the other nodes, which pass it
//! through their own chains → the push notifier for members connected
//! nowhere. Every node delivers a conversation's entries in its chain's
//! order, which is ascending id order (docs/cluster.md). A slow socket
//! never slows a sender: its bounded queue fills, that session is closed,
//! and the client resumes by sync, losing nothing because delivery state
//! lives in the store.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use chat_core::engine::Engine;
//!
//! let engine = Engine::builder().insecure_fast_password_hashing().build().await?;
//! let alice = engine.signup("alice", "correct horse", None).await?;
//! let bob = engine.signup("bob", "battery staple", None).await?;
//!
//! let (mut bob_session, mut bob_out) = engine.connect(&bob.identity()).await?;
//! bob_session.start().await?; // the automatic sync after connect
//! let synced = bob_out.recv().await.unwrap();
//! assert!(std::str::from_utf8(&synced)?.contains("synced"));
//!
//! let (mut alice_session, mut alice_out) = engine.connect(&alice.identity()).await?;
//! alice_session.start().await?;
//! alice_out.recv().await; // synced
//! alice_session
//!     .handle_text(&format!(
//!         r#"{{"type":"send","id":"1","to":"{}","body":"hi"}}"#,
//!         bob.user_id
//!     ))
//!     .await;
//! let sent = alice_out.recv().await.unwrap();
//! assert!(std::str::from_utf8(&sent)?.contains(r#""type":"sent""#));
//! let message = bob_out.recv().await.unwrap();
//! assert!(std::str::from_utf8(&message)?.contains(r#""body":"hi""#));
//! # Ok(())
//! # }
//! ```

mod actions;
mod append;
mod background;
mod bounds;
mod budget;
mod builder;
mod caches;
mod chain;
mod client;
mod confirm;
mod deliver;
mod drain;
mod envelope;
mod frames;
mod gate;
mod hashing;
mod local;
mod membership;
mod push_later;
mod queue;
mod ready;
mod receipts;
mod redact;
mod registry;
mod retention;
mod session;
mod sync;
mod throttle;

use std::sync::{Arc, Weak};

pub use actions::Sent;
pub use actions::accounts::{LoginOk, SignupOk};
pub use actions::devices::DeviceInfo;
pub use actions::groups::{GroupInfo, NewGroup};
pub use budget::{AddrKey, BudgetRate, cost};
pub use builder::{EngineBuilder, Limits};
pub use client::ClientInfo;
pub use confirm::CONFIRM_WAIT;
pub use drain::Drained;
pub use local::LocalStats;
pub use ready::{NotReady, ReadyPart};
pub use registry::CloseReason;
pub use session::{Outbound, Session};
pub use throttle::LoginThrottleConfig;

use crate::auth::{Authenticator, Identity};
use crate::cluster::{Bus, Discovery, NodeInfo, PresenceStore};
use crate::error::Result;
use crate::id::IdGenerator;
use crate::model::{NodeId, Retention};
use crate::observe::{EngineStats, Event, LeaseState, Observer};
use crate::push::Notifier;
use crate::store::{AccountStore, ConversationStore, MessageStore};

/// The chat engine of one node. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Everything the engine holds; shared by sessions and background tasks.
pub(crate) struct Inner {
    /// This very `Inner`, for tasks the engine spawns (they must not keep it alive).
    pub(crate) me: Weak<Inner>,
    pub(crate) node: NodeId,
    pub(crate) public_url: String,
    pub(crate) retention: Retention,
    pub(crate) limits: Limits,
    pub(crate) ids: IdGenerator,
    pub(crate) messages: Arc<dyn MessageStore>,
    pub(crate) conversations: Arc<dyn ConversationStore>,
    pub(crate) accounts: Arc<dyn AccountStore>,
    pub(crate) presence: Arc<dyn PresenceStore>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) discovery: Arc<dyn Discovery>,
    pub(crate) notifier: Option<Arc<dyn Notifier>>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) passwords: hashing::PasswordHashing,
    pub(crate) budgets: budget::Budgets,
    pub(crate) typing_gate: budget::TypingGate,
    pub(crate) login_throttle: throttle::LoginThrottle,
    pub(crate) registry: registry::Registry,
    pub(crate) watchers: registry::Watchers,
    pub(crate) local: local::Local,
    pub(crate) caches: caches::Caches,
    pub(crate) confirmations: confirm::Confirmations,
    pub(crate) purges: retention::Purges,
    pub(crate) group_locks: actions::groups::GroupLocks,
    pub(crate) receipts: receipts::ReceiptBatch,
    pub(crate) membership: membership::Membership,
    /// Where the engine reports what it does (metrics).
    pub(crate) observer: Arc<dyn Observer>,
    /// Set by [`Engine::drain`]: no new sessions, no discovery heartbeats.
    pub(crate) draining: std::sync::atomic::AtomicBool,
    pub(crate) tasks: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Engine {
    /// A builder with in-memory parts by default.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.inner.node
    }

    /// The Snowflake worker id in this node's message ids: the one its
    /// [`NodeLease`](crate::cluster::NodeLease) holds.
    pub fn worker_id(&self) -> u16 {
        self.inner.membership.lease().worker_id()
    }

    /// Completes if another node takes this node's worker id (its lease
    /// lapsed and was claimed elsewhere: a partition from the cluster store,
    /// or a long pause). The engine has then stopped minting ids and
    /// writing presence or discovery under its name; the caller should shut
    /// it down and start again. Never completes otherwise.
    pub async fn id_lost(&self) {
        self.inner.membership.wait_lost().await;
    }

    /// Whether another node took this node's worker id (see [`Engine::id_lost`]).
    pub fn is_id_lost(&self) -> bool {
        self.inner.membership.is_lost()
    }

    /// The retention mode.
    pub fn retention(&self) -> Retention {
        self.inner.retention
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Open sessions on this node.
    pub fn connection_count(&self) -> usize {
        self.inner.registry.session_count()
    }

    /// What this node follows (for tests and metrics).
    pub fn local_stats(&self) -> LocalStats {
        self.inner.local.stats()
    }

    /// The engine's levels now, for metrics gauges (see [`crate::observe`]).
    /// Walks the open sessions once: cheap enough for a scrape every few
    /// seconds, not for every request.
    pub fn stats(&self) -> EngineStats {
        let inner = &self.inner;
        let sessions = inner.registry.all_sessions();
        let lease = if inner.membership.is_lost() {
            LeaseState::Lost
        } else if inner.membership.check_mint().is_err() {
            LeaseState::Expired
        } else {
            LeaseState::Held
        };
        EngineStats {
            sessions: sessions.len(),
            queued_bytes: sessions.iter().map(|s| s.queued_bytes()).sum(),
            conversations: inner.local.len(),
            hashes_pending: inner.passwords.pending(),
            hash_threads: inner.passwords.threads(),
            hash_queue: inner.limits.hash_queue,
            lease,
            draining: inner.is_draining(),
        }
    }

    /// Open sessions of `user` on this node.
    pub fn user_connection_count(&self, user: &crate::model::UserId) -> usize {
        self.inner.registry.for_each(user, |_| {})
    }

    /// Whom a bearer token belongs to: the token must verify, its device
    /// must still exist (a removed device's tokens stop working at once) and
    /// so must its account (a token signed by a leaked secret for an
    /// invented id is refused too). Answered from a cache after the first
    /// time, so this costs no store round trip per request.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        let identity = self.inner.auth.verify(token).await?;
        self.inner.check_device(&identity).await?;
        Ok(identity)
    }

    /// This node as discovery should list it now.
    pub fn node_info(&self) -> NodeInfo {
        self.inner.node_info()
    }

    /// Stops background tasks, closes every session, counts them out of
    /// presence (their users turn offline at once unless connected
    /// elsewhere, rather than when this node's heartbeat expires), leaves
    /// discovery and releases its worker id. Messages are already stored;
    /// clients reconnect and sync. A node whose id was taken leaves
    /// presence, discovery and the id to their new holder.
    pub async fn shutdown(&self) {
        let tasks: Vec<_> = self.inner.tasks.lock().drain(..).collect();
        for task in tasks {
            task.abort();
        }
        {
            let _gate = self.inner.membership.gate.read().await;
            for session in self.inner.registry.close_all(CloseReason::Shutdown) {
                session::release_presence(&self.inner, &session).await;
            }
        }
        if self.inner.membership.is_lost() {
            return;
        }
        if let Err(e) = self.inner.discovery.deregister(&self.inner.node).await {
            tracing::warn!(error = %e, "could not leave discovery at shutdown");
        }
        if let Err(e) = self.inner.membership.lease().release().await {
            tracing::warn!(error = %e, "could not release this node's id at shutdown; it lapses with its lease");
        }
    }
}

impl Inner {
    /// Reports a login or sign-up that the full hashing queue refused.
    pub(crate) fn hashing_refused(&self, e: &crate::Error) {
        if matches!(e, crate::Error::Unavailable { .. }) {
            self.observer.event(&Event::HashQueueFull);
        }
    }

    pub(crate) fn node_info(&self) -> NodeInfo {
        NodeInfo {
            id: self.node.clone(),
            public_url: self.public_url.clone(),
            load: self.registry.session_count() as u64,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
    }
}
