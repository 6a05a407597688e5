//! What crosses between chat server nodes: the [`Bus`] that carries frames to
//! users connected elsewhere, [`PresenceStore`] (who is online, on which
//! node, with heartbeat expiry) and [`Discovery`] (live nodes, their load,
//! which node a user should use), and [`NodeIds`] / [`NodeLease`] (each
//! node's exclusive claim on its worker id).

mod choice;
mod lease;

pub use choice::{choose_node, rendezvous_weight};
pub use lease::{NodeIds, NodeLease, Renewal};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::model::{Millis, NodeId, Presence, UserId};

/// Where a bus message goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// The sessions of one user, on whatever node they are.
    User(UserId),
    /// Watchers of one user's presence.
    Presence(UserId),
    /// Not a channel, never published: a bus hands this to its own node
    /// after it lost its connection and subscribed again. Messages published
    /// meanwhile may not have arrived, so the engine re-syncs every local
    /// session (the store has every message; nothing is lost, only late).
    Resumed,
}

/// One message off the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusMessage {
    /// The node that published it: the bus stamps its own node id on every
    /// publish, so a node can skip what it published itself (it already
    /// delivered those to its local sessions).
    pub origin: NodeId,
    /// The topic it was published to.
    pub topic: Topic,
    /// An encoded server frame, shared as is with local sessions.
    pub payload: Bytes,
}

/// The stream of bus messages for one node.
pub type BusReceiver = tokio::sync::mpsc::Receiver<BusMessage>;

/// Carries encoded frames between nodes. A node receives only the topics it
/// subscribed to: no broadcast of every message to every node.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Starts receiving for this node. Called once, by the engine at build.
    async fn open(&self) -> Result<BusReceiver>;

    /// Publishes `payload` to every topic in `topics`, stamped with this
    /// node's id as origin. Subscribed nodes receive it, the publisher too
    /// when it is subscribed (it filters by origin).
    async fn publish(&self, topics: &[Topic], payload: Bytes) -> Result<()>;

    /// This node wants messages for `topic`: those published after this
    /// returns. Messages that one node publishes one after another (each
    /// publish awaited) reach a subscriber in that order.
    async fn subscribe(&self, topic: &Topic) -> Result<()>;

    /// This node no longer wants messages for `topic`: none published
    /// after this returns.
    async fn unsubscribe(&self, topic: &Topic) -> Result<()>;
}

/// A user's presence as stored: [`Presence`] plus the nodes it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceEntry {
    /// Online or offline, with last_seen.
    pub presence: Presence,
    /// Nodes holding at least one of its connections.
    pub nodes: Vec<NodeId>,
    /// Whether an offline answer can be trusted. False while the store is
    /// refilling after it lost its data (see [`PresenceStore`]): the user
    /// may be connected to a node that has not re-registered yet. The
    /// engine then publishes to the user anyway and holds its push back
    /// until presence is sure. Always true for an online answer.
    pub certain: bool,
}

/// Who is online, on which node. A user is online while any node holds a
/// connection of it and that node's heartbeat has not expired.
///
/// Expiry takes effect at [`reap`](PresenceStore::reap): `presence` takes no
/// time and reports the stored connections. A node that never sent a
/// heartbeat never expires (a single node needs no heartbeats). A
/// `disconnect` for a connection that is not counted (say, reaped) changes
/// nothing.
///
/// A store that can lose its data (Redis run without persistence) is a
/// cache that the nodes rebuild: each node knows its own connections and
/// writes them back with [`restore`](PresenceStore::restore). Until every
/// node has done so, an offline answer may be wrong, so such a store keeps
/// a marker that it holds the deployment's data: while the marker is
/// missing, and for a settle time after a [`heartbeat`](PresenceStore::heartbeat)
/// puts it back, `presence` answers offline users with
/// [`PresenceEntry::certain`] false. A store that never loses data is
/// always certain.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// One more connection of `user` on `node`. Returns true when the user
    /// went from offline to online.
    async fn connect(&self, user: &UserId, node: &NodeId, now: Millis) -> Result<bool>;

    /// One connection of `user` on `node` closed. Returns true when the user
    /// went offline (its last connection anywhere); last_seen becomes `now`.
    async fn disconnect(&self, user: &UserId, node: &NodeId, now: Millis) -> Result<bool>;

    /// The presence of each of `users`, in the same order.
    async fn presence(&self, users: &[UserId]) -> Result<Vec<PresenceEntry>>;

    /// `node` is alive at `now`; its connections count until `now + ttl`.
    /// When the store finds it had lost its data, it marks itself as
    /// settling (offline answers uncertain) for at least `ttl`.
    async fn heartbeat(&self, node: &NodeId, now: Millis, ttl: Millis) -> Result<()>;

    /// Makes `node`'s connections exactly `connections` (user, open
    /// connections there): counts are set, not added, and users the store
    /// holds on `node` that are not listed are counted out. Returns the
    /// users whose presence changed because of it (online, or offline with
    /// last_seen `now`), each once even when several nodes restore at once.
    /// Calling it again with the same list changes nothing.
    ///
    /// The caller must keep its own connects and disconnects on `node` out
    /// of the way while this runs, so that the list is still true when
    /// written.
    async fn restore(
        &self,
        node: &NodeId,
        connections: &[(UserId, u32)],
        now: Millis,
    ) -> Result<Vec<Presence>>;

    /// Forgets the connections of nodes whose heartbeat expired before `now`
    /// and returns the users that went offline because of it, with a
    /// last_seen between that node's last heartbeat and `now`.
    async fn reap(&self, now: Millis) -> Result<Vec<Presence>>;
}

/// One chat server node as discovery knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id.
    pub id: NodeId,
    /// The WebSocket URL clients connect to (`chat_url`).
    pub public_url: String,
    /// Open connections now.
    pub load: u64,
}

/// Live nodes and the choice of a node for each user.
#[async_trait]
pub trait Discovery: Send + Sync + 'static {
    /// Registers or refreshes `node` with its load; it stays live until `now + ttl`.
    async fn register(&self, node: &NodeInfo, now: Millis, ttl: Millis) -> Result<()>;

    /// Removes `node` at once (clean shutdown).
    async fn deregister(&self, node: &NodeId) -> Result<()>;

    /// Nodes whose registration has not expired at `now`.
    async fn live_nodes(&self, now: Millis) -> Result<Vec<NodeInfo>>;

    /// The node `user` should connect to, or `None` when no node is live.
    async fn pick(&self, user: &UserId, now: Millis) -> Result<Option<NodeInfo>>;
}
