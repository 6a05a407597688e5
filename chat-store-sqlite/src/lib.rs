#![doc = include_str!("../README.md")]

mod accounts;
mod config;
mod conversations;
mod cursors;
mod error;
mod ids;
mod messages;
mod readers;
mod rows;
mod schema;
mod store;
mod writer;

pub use config::{DEFAULT_PATH, DEFAULT_URL, Durability, SqliteConfig, SqliteConfigBuilder};
pub use error::SqliteError;
pub use store::SqliteStore;
pub use writer::WriteStats;
