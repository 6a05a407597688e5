//! [`NodeIds`] and [`NodeLease`]: a node's exclusive claim on its worker id.
//!
//! A message id carries the worker id of the node that minted it (see
//! [`crate::id`]), so two live nodes with one worker id can mint the same
//! id. A node therefore claims its id in the deployment's shared state when
//! it joins, and holds it with a lease: the engine renews it at every
//! heartbeat, releases it at a clean shutdown, and after a crash it lapses
//! once its ttl has passed without renewal.
//!
//! What the engine does with a lease (see [`crate::engine`]):
//! - it mints ids only while the lease is known to be held: until one
//!   heartbeat interval before the ttl of the last successful renewal runs
//!   out, measured from before that renewal was sent. A node that cannot
//!   renew (its store is unreachable, or it was paused) stops minting, and
//!   a send answers `unavailable` (not stored; the client retries), before
//!   another node can have taken the id;
//! - [`Renewal::Reclaimed`] (the claim had vanished: the store lost its
//!   data, or the lease lapsed while nobody took the id) means whatever
//!   else the store held for this node may be gone too: the engine takes
//!   the id back and re-registers its sessions' presence at once;
//! - [`Renewal::Lost`] (another node holds the id now): the engine stops
//!   minting for good, stops writing presence and discovery under the name
//!   that now belongs to the other node, and reports it through
//!   [`Engine::id_lost`](crate::engine::Engine::id_lost); the server then
//!   shuts down.
//!
//! The single-node default is a [`MemoryNodeIds`](crate::memory::MemoryNodeIds)
//! of its own, which nobody else can claim from.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::Millis;

/// What a renewal of a [`NodeLease`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Renewal {
    /// The claim was still this node's; it now runs for another ttl.
    Held,
    /// The claim had vanished (the store lost it, or it lapsed and nobody
    /// took the id meanwhile) and is this node's again. Other state of this
    /// node in that store may be gone as well.
    Reclaimed,
    /// Another node holds the id now: this node must stop minting ids.
    Lost {
        /// The other holder as the store describes it (its public URL), if known.
        holder: Option<String>,
    },
}

/// Hands out worker ids (`0..`[`MAX_WORKERS`](crate::id::MAX_WORKERS)),
/// each to one live node at a time.
#[async_trait]
pub trait NodeIds: Send + Sync + 'static {
    /// Claims worker id `wanted` or, with `None`, any free one, for `ttl`
    /// milliseconds. `holder` describes the claimant (its public URL) to
    /// whoever finds the id taken.
    ///
    /// Fails with `AlreadyExists` when `wanted` is held by another node (the
    /// message says by whom and for how long), `InvalidInput` when it is out
    /// of range, and `Unavailable` when every id is held or the store
    /// cannot be reached. An adapter whose store can lose its data may wait
    /// before claiming, so that running nodes take their ids back first
    /// (the Redis adapter does).
    async fn claim(
        &self,
        wanted: Option<u16>,
        holder: &str,
        ttl: Millis,
    ) -> Result<Box<dyn NodeLease>>;
}

/// One node's claim on its worker id, from [`NodeIds::claim`].
#[async_trait]
pub trait NodeLease: Send + Sync + 'static {
    /// The worker id it holds.
    fn worker_id(&self) -> u16;

    /// Renews the claim for `ttl` milliseconds from now, taking it back
    /// when it had vanished and the id is free.
    async fn renew(&self, ttl: Millis) -> Result<Renewal>;

    /// Gives the id up at once (clean shutdown). A claim that is no longer
    /// this node's is left alone.
    async fn release(&self) -> Result<()>;
}
