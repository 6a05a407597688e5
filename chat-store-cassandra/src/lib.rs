#![doc = include_str!("../README.md")]

mod accounts;
mod codec;
mod config;
mod conversations;
mod messages;
mod reconnect;
mod schema;
mod statements;
mod store;

pub use config::{CassandraConfig, Consistency, Credentials, Replication, SerialConsistency};
pub use store::CassandraStore;
