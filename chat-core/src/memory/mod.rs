//! In-memory implementations of every adapter trait.
//!
//! They are the engine's embedded default (one process, nothing to install)
//! and the reference model that property tests compare other adapters with,
//! so they favour plain, obviously-correct data structures over cleverness.
//! Every piece of state sits behind a `parking_lot` lock that is never held
//! across an `.await`.
//!
//! - [`MemoryStore`] for [`MessageStore`](crate::store::MessageStore),
//!   [`ConversationStore`](crate::store::ConversationStore) and
//!   [`AccountStore`](crate::store::AccountStore) in one struct.
//! - [`MemoryPresence`] for [`PresenceStore`](crate::cluster::PresenceStore).
//! - [`MemoryBusHub`] and [`MemoryBus`] for a [`Bus`](crate::cluster::Bus)
//!   shared by several simulated nodes of one process.
//! - [`MemoryDiscovery`] for [`Discovery`](crate::cluster::Discovery).
//! - [`MemoryNodeIds`] and [`MemoryLease`] for [`NodeIds`](crate::cluster::NodeIds)
//!   and [`NodeLease`](crate::cluster::NodeLease).
//! - [`RecordingNotifier`] and [`NoopNotifier`] for [`Notifier`](crate::push::Notifier)s.
//! - [`MemoryAuthenticator`] for [`Authenticator`](crate::auth::Authenticator)
//!   with random opaque tokens.

mod auth;
mod bus;
mod discovery;
mod node_ids;
mod notifier;
mod presence;
mod store;

pub use auth::MemoryAuthenticator;
pub use bus::{MemoryBus, MemoryBusHub};
pub use discovery::MemoryDiscovery;
pub use node_ids::{MemoryLease, MemoryNodeIds};
pub use notifier::{NoopNotifier, RecordingNotifier};
pub use presence::MemoryPresence;
pub use store::MemoryStore;
