#![doc = include_str!("../README.md")]

mod accounts;
mod append;
mod codec;
mod config;
mod conversations;
mod deliveries;
mod history;
mod message_store;
mod reconnect;
mod residue;
mod schema;
mod statements;
mod store;

pub use config::{CassandraConfig, Consistency};
pub use store::CassandraStore;
