//! chat-transport-ws: the WebSocket transport of chat-core.
#![doc = include_str!("../README.md")]

mod config;
mod connection;
mod error;
mod origin;
mod route;

pub use config::{OpenSockets, WsConfig};
pub use connection::{
    CLOSE_DRAINING, CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_RESYNC, CLOSE_REVOKED,
    CLOSE_SLOW_CONSUMER, CLOSE_TOO_BIG, SLOW_CONSUMER_REASON,
};
pub use error::{WsError, error_body, status_of};
pub use origin::OriginPolicy;
pub use route::ws_route;
