#![doc = include_str!("../README.md")]

mod accounts;
mod append;
mod batcher;
mod config;
mod conn;
mod conversations;
mod cursors;
mod error;
mod ids;
mod log;
mod messages;
mod migrations;
mod plans;
mod rows;
mod schema;
mod store;
pub mod testing;

pub use config::{PostgresConfig, TlsConfig};
pub use plans::HotQuery;
pub use store::{AppendStats, PostgresStore};
