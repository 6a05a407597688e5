//! The conformance suite that every adapter runs (feature `testkit`).
//!
//! Plain `pub async fn`s, one per promise of the traits, that take an
//! adapter and panic with a message naming the broken promise. Each adapter
//! crate runs them all with one macro line per trait group:
//!
//! ```ignore
//! // In an adapter crate's tests/conformance.rs, with tokio (features
//! // "macros" and "rt-multi-thread") as a dev-dependency:
//! chat_core::message_store_conformance!(async { std::sync::Arc::new(MyStore::connect().await) });
//! ```
//!
//! The factory expression is evaluated afresh for every test. Ids, user
//! names and conversation ids are random per call, so the functions can run
//! many times, in parallel, against one persistent database. The exceptions
//! are the global sweeps: [`presence::presence_heartbeat_expiry_and_reap`]
//! and the [`discovery`] functions see every node of the instance they get,
//! so their factory must hand out an instance of their own (a fresh key
//! prefix, say).
//!
//! Groups and their macros:
//! - [`messages`] and [`deliveries`] for [`MessageStore`](crate::store::MessageStore),
//!   [`message_store_conformance!`](crate::message_store_conformance).
//! - [`conversations`] for [`ConversationStore`](crate::store::ConversationStore),
//!   [`conversation_store_conformance!`](crate::conversation_store_conformance).
//! - [`accounts`] for [`AccountStore`](crate::store::AccountStore),
//!   [`account_store_conformance!`](crate::account_store_conformance).
//! - [`presence`] for [`PresenceStore`](crate::cluster::PresenceStore),
//!   [`presence_conformance!`](crate::presence_conformance).
//! - [`bus`] for [`Bus`](crate::cluster::Bus), [`bus_conformance!`](crate::bus_conformance).
//! - [`discovery`] for [`Discovery`](crate::cluster::Discovery),
//!   [`discovery_conformance!`](crate::discovery_conformance).
//! - [`lease`] for [`NodeIds`](crate::cluster::NodeIds) and
//!   [`NodeLease`](crate::cluster::NodeLease),
//!   [`node_ids_conformance!`](crate::node_ids_conformance).
//! - [`engine_model`]: the engine driven by random operations against a simple
//!   model, over any store (a proptest state machine).
//! - [`auth`] for [`Authenticator`](crate::auth::Authenticator),
//!   [`authenticator_conformance!`](crate::authenticator_conformance).

pub mod accounts;
pub mod auth;
pub mod bus;
pub mod conversations;
pub mod deliveries;
pub mod discovery;
pub mod engine_model;
mod fixtures;
pub mod lease;
mod macros;
pub mod messages;
pub mod presence;
