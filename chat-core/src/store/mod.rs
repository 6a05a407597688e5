//! The storage traits that adapters implement, and the wrappers over them
//! ([`ShardedStore`], [`FaultyStore`]). docs/storage.md explains the model.
//!
//! Three traits, each object-safe and used as `Arc<dyn Trait>`:
//! - [`MessageStore`]: each conversation's log of entries (messages, message
//!   events, group events) with its head, and the delivery and read cursors
//!   of users and devices.
//! - [`ConversationStore`]: conversations, members with roles and join
//!   points, bans and invites.
//! - [`AccountStore`]: accounts, devices and blocks.

mod accounts;
mod conversations;
pub mod faulty;
mod messages;
pub mod observed;
pub mod sharded;

pub use accounts::AccountStore;
pub use conversations::ConversationStore;
pub use faulty::{FaultSwitch, FaultyStore};
pub use messages::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};
pub use observed::Observed;
pub use sharded::{Reconciled, RepairConfig, ShardBy, ShardedStore};
