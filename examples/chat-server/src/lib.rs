//! The example chat server: chat-core's engine behind the contract's HTTP API
//! and WebSocket (docs/protocol.md), with a small web page.
//!
//! A library so that tests can start it in-process; `main.rs` only parses the
//! flags and calls [`serve`].
//!
//! Extensions to the contract: `GET /api/users?username=NAME` (a profile by
//! username, to start a direct chat), `GET /api/conversations` entries carry
//! a group's `name`, and the flags `--token-ttl-secs`, `--max-frame-bytes`,
//! `--ping-interval-secs` and `--node-lease-ms`. With `--cluster`,
//! `--node-id` is optional: the node claims a free id in Redis.
//!
//! ```no_run
//! # async fn run() -> Result<(), chat_server::ServerError> {
//! let config = chat_server::Config::default();
//! chat_server::serve(&config, chat_server::shutdown_signal()).await
//! # }
//! ```

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod logging;
pub mod metrics;
mod net;
pub mod push;
pub mod stores;
pub mod tls;
pub mod web;

pub use app::{Bound, build_app, serve, shutdown_signal};
pub use config::Config;
pub use error::ServerError;
