//! [`EngineBuilder`]: in-memory parts by default, every part replaceable.

use std::sync::Arc;
use std::time::Duration;

use super::budget::{BudgetRate, Budgets, TypingGate};
use super::hashing::PasswordHashing;
use super::throttle::{LoginThrottle, LoginThrottleConfig};
use super::{Engine, Inner, background, caches, local, membership, registry, retention};
use crate::auth::Authenticator;
use crate::cluster::{Bus, Discovery, NodeLease, PresenceStore};
use crate::error::{Error, Result};
use crate::id::IdGenerator;
use crate::memory::{
    MemoryAuthenticator, MemoryBusHub, MemoryDiscovery, MemoryNodeIds, MemoryPresence, MemoryStore,
};
use crate::model::{Millis, NodeId, Retention};
use crate::observe::{NoObserver, Observer};
use crate::push::Notifier;
use crate::store::{AccountStore, ConversationStore, MessageStore};

/// Sizes and rates the engine enforces. Every field has a default fit for chat.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest message body in bytes (UTF-8). Default 16 KiB.
    pub max_body_bytes: usize,
    /// Bytes of messages and answers queued for one session before it
    /// counts as too slow and is closed (it resumes by sync, losing
    /// nothing). Typing, presence and receipts wait in replaceable slots
    /// that do not count. Default 1 MiB (as Centrifugo's client queue).
    pub outbound_queue_bytes: usize,
    /// Live messages held for a session while its sync runs. Default 4096.
    pub sync_buffer: usize,
    /// Messages read from the store per sync page. Default 256.
    pub sync_page: usize,
    /// History page size when the client names none. Default 50.
    pub history_default: usize,
    /// Largest history page. Default 200.
    pub history_max: usize,
    /// The write budget of each user: every frame of every session and
    /// every HTTP write of the user on this node draws from it (see
    /// [`super::cost`]). `None`: no budget. Default 10/s, burst 60.
    pub user_budget: Option<BudgetRate>,
    /// The write budget of each client address (an IPv6 /64), all its users
    /// together. `None`: no budget. Default 50/s, burst 200.
    pub addr_budget: Option<BudgetRate>,
    /// Failed-login throttling per username and per address.
    pub login_throttle: LoginThrottleConfig,
    /// Threads that hash passwords (each holds argon2's 19 MiB). 0: one per
    /// CPU core (the default).
    pub hash_threads: usize,
    /// Logins and sign-ups that may wait for a hashing thread; past it they
    /// get [`crate::Error::Unavailable`] at once. Default 64.
    pub hash_queue: usize,
    /// Most users one presence_subscribe may name. Default 1000.
    pub max_presence_watch: usize,
    /// Most members of a group. Default 100,000.
    pub max_group_members: usize,
    /// How often this node heartbeats presence and discovery. Default 5 s.
    pub heartbeat_every: Duration,
    /// How long a heartbeat keeps a node alive. Default 15 s.
    pub heartbeat_ttl: Duration,
    /// How long one renewal of this node's claim on its worker id lasts
    /// (see [`crate::cluster::NodeLease`]). It is renewed every
    /// `heartbeat_every`; the node mints ids until `id_lease -
    /// heartbeat_every` after its last renewal, and a crashed node's id is
    /// free again `id_lease` after it. Must be longer than
    /// `heartbeat_every`. Default 15 s.
    pub id_lease: Duration,
    /// How long a node waits for an entry's predecessor to arrive from
    /// another node before it reads it from the store (docs/cluster.md).
    /// Default 250 ms.
    pub reorder_wait: Duration,
    /// A device that has not connected for this long holds no message back
    /// under until_delivered retention. Default 30 days.
    pub device_ttl: Duration,
    /// Conversations of up to this many members have their delivered
    /// entries purged at each ack (until_delivered); bigger ones by the
    /// background sweep. Default 64.
    pub purge_at_ack_members: usize,
    /// How often the background sweep purges delivered entries of big
    /// conversations (until_delivered). Default 60 s.
    pub purge_every: Duration,
    /// Conversations of up to this many members push to members connected
    /// nowhere; bigger groups do not (a push per member per message is what
    /// a big group must not cost). Default 1,000.
    pub push_max_members: usize,
    /// Read receipts go to every other member in conversations of up to this
    /// many members, and only to the senders of what was read in bigger
    /// ones. Default 33.
    pub read_receipts_to_all: usize,
    /// How long receipts for a sender in a big group are gathered before
    /// they go out as one `receipts` frame. Default 250 ms.
    pub receipt_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            sync_buffer: 4096,
            sync_page: 256,
            history_default: 50,
            history_max: 200,
            user_budget: BudgetRate::new(10.0, 60.0),
            addr_budget: BudgetRate::new(50.0, 200.0),
            login_throttle: LoginThrottleConfig::default(),
            hash_threads: 0,
            hash_queue: 64,
            max_presence_watch: 1000,
            max_group_members: 100_000,
            heartbeat_every: Duration::from_secs(5),
            heartbeat_ttl: Duration::from_secs(15),
            id_lease: Duration::from_secs(15),
            reorder_wait: Duration::from_millis(250),
            device_ttl: Duration::from_secs(30 * 24 * 3600),
            purge_at_ack_members: 64,
            purge_every: Duration::from_secs(60),
            push_max_members: 1000,
            read_receipts_to_all: 33,
            receipt_every: Duration::from_millis(250),
        }
    }
}

/// Builds an [`Engine`]. Parts left unset are in-memory.
#[derive(Default)]
pub struct EngineBuilder {
    node: Option<NodeId>,
    worker: Option<u16>,
    lease: Option<Arc<dyn NodeLease>>,
    public_url: Option<String>,
    retention: Retention,
    limits: Limits,
    messages: Option<Arc<dyn MessageStore>>,
    conversations: Option<Arc<dyn ConversationStore>>,
    accounts: Option<Arc<dyn AccountStore>>,
    presence: Option<Arc<dyn PresenceStore>>,
    bus: Option<Arc<dyn Bus>>,
    discovery: Option<Arc<dyn Discovery>>,
    notifier: Option<Arc<dyn Notifier>>,
    auth: Option<Arc<dyn Authenticator>>,
    observer: Option<Arc<dyn Observer>>,
    insecure_fast_hashing: bool,
}

impl EngineBuilder {
    /// This node's Snowflake worker id (0..1024); also names the node as
    /// `node-N` unless [`EngineBuilder::node_name`] says otherwise. Default
    /// 0, or the id of the [`EngineBuilder::lease`].
    pub fn worker_id(mut self, worker: u16) -> Self {
        self.worker = Some(worker);
        self
    }

    /// This node's claim on its worker id in the deployment (for example
    /// from the Redis adapter's `NodeIds`): the worker id is the lease's,
    /// renewed at every heartbeat and released at shutdown. Without one, the
    /// engine claims its worker id from a private
    /// [`MemoryNodeIds`](crate::memory::MemoryNodeIds), which nothing else
    /// shares: right for a single node, where no other node mints ids.
    pub fn lease(mut self, lease: Arc<dyn NodeLease>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The node's name in presence, bus and discovery.
    pub fn node_name(mut self, node: impl Into<NodeId>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// The WebSocket URL clients should use for this node (`chat_url`).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Keep messages forever (default) or until every recipient acked them.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Sizes and rates.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// One store for messages, conversations and accounts.
    pub fn store<S>(mut self, store: Arc<S>) -> Self
    where
        S: MessageStore + ConversationStore + AccountStore,
    {
        self.messages = Some(store.clone());
        self.conversations = Some(store.clone());
        self.accounts = Some(store);
        self
    }

    /// The message store (for example a [`crate::store::ShardedStore`]).
    pub fn message_store(mut self, store: Arc<dyn MessageStore>) -> Self {
        self.messages = Some(store);
        self
    }

    /// The conversation and membership store.
    pub fn conversation_store(mut self, store: Arc<dyn ConversationStore>) -> Self {
        self.conversations = Some(store);
        self
    }

    /// The account store.
    pub fn account_store(mut self, store: Arc<dyn AccountStore>) -> Self {
        self.accounts = Some(store);
        self
    }

    /// Presence (who is online where).
    pub fn presence(mut self, presence: Arc<dyn PresenceStore>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// The cross-node bus.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Service discovery.
    pub fn discovery(mut self, discovery: Arc<dyn Discovery>) -> Self {
        self.discovery = Some(discovery);
        self
    }

    /// The push notifier for recipients with no open connection (none by default).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The token authenticator.
    pub fn authenticator(mut self, auth: Arc<dyn Authenticator>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Where the engine reports what it does, for metrics (see
    /// [`crate::observe`]). Default: nowhere.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Argon2id with the smallest cost: for tests only, never in production.
    pub fn insecure_fast_password_hashing(mut self) -> Self {
        self.insecure_fast_hashing = true;
        self
    }

    /// Builds the engine and starts its background tasks (bus receiver,
    /// heartbeats, presence reaping). Needs a Tokio runtime.
    pub async fn build(self) -> Result<Engine> {
        if self.limits.id_lease <= self.limits.heartbeat_every {
            return Err(Error::invalid(format!(
                "the id lease ({:?}) must be longer than the heartbeat interval ({:?})",
                self.limits.id_lease, self.limits.heartbeat_every
            )));
        }
        let lease: Arc<dyn NodeLease> = match self.lease {
            Some(lease) => {
                if let Some(worker) = self.worker.filter(|w| *w != lease.worker_id()) {
                    return Err(Error::invalid(format!(
                        "worker id {worker} differs from the lease's id {}",
                        lease.worker_id()
                    )));
                }
                lease
            }
            None => Arc::new(MemoryNodeIds::new().claim_now(
                Some(self.worker.unwrap_or(0)),
                "this process",
                self.limits.id_lease.as_millis() as Millis,
            )?),
        };
        let worker = lease.worker_id();
        let ids = IdGenerator::new(worker)?;
        let node = self
            .node
            .unwrap_or_else(|| NodeId::from(format!("node-{worker}")));
        let store = Arc::new(MemoryStore::default());
        let bus = match self.bus {
            Some(bus) => bus,
            None => Arc::new(MemoryBusHub::default().node(node.clone())),
        };
        let receiver = bus.open().await?;
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            public_url: self
                .public_url
                .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned()),
            retention: self.retention,
            ids,
            messages: self.messages.unwrap_or_else(|| store.clone()),
            conversations: self.conversations.unwrap_or_else(|| store.clone()),
            accounts: self.accounts.unwrap_or_else(|| store.clone()),
            presence: self
                .presence
                .unwrap_or_else(|| Arc::new(MemoryPresence::default())),
            bus,
            discovery: self
                .discovery
                .unwrap_or_else(|| Arc::new(MemoryDiscovery::default())),
            notifier: self.notifier,
            auth: self
                .auth
                .unwrap_or_else(|| Arc::new(MemoryAuthenticator::default())),
            passwords: PasswordHashing::start(
                if self.insecure_fast_hashing {
                    PasswordHashing::insecure_fast_params()
                } else {
                    PasswordHashing::recommended_params()
                },
                self.limits.hash_threads,
                self.limits.hash_queue,
            ),
            budgets: Budgets::new(self.limits.user_budget, self.limits.addr_budget),
            typing_gate: TypingGate::default(),
            login_throttle: LoginThrottle::new(self.limits.login_throttle.clone()),
            registry: registry::Registry::default(),
            watchers: registry::Watchers::default(),
            local: local::Local::default(),
            caches: caches::Caches::default(),
            confirmations: Default::default(),
            purges: retention::Purges::default(),
            group_locks: Default::default(),
            receipts: Default::default(),
            membership: membership::Membership::new(lease),
            observer: self.observer.unwrap_or_else(|| Arc::new(NoObserver)),
            draining: Default::default(),
            tasks: parking_lot::Mutex::new(Vec::new()),
            limits: self.limits,
            node,
        });
        background::start(&inner, receiver).await?;
        Ok(Engine { inner })
    }
}
