//! chat-core: the domain, traits, in-memory adapters and engine of a
//! WhatsApp- or Messenger-style chat service.
#![doc = include_str!("../README.md")]

pub mod auth;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod id;
pub mod memory;
pub mod model;
pub mod names;
pub mod observe;
pub mod protocol;
pub mod push;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, Result};
pub use model::*;
