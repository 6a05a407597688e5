//! Snowflake-style message ids (placeholder: being written).
use std::sync::atomic::{AtomicU64, Ordering};
use crate::model::MessageId;

/// Generates ids.
#[derive(Debug)]
pub struct IdGenerator {
    worker: u16,
    next: AtomicU64,
}

impl IdGenerator {
    /// A generator for `worker` (0..1024).
    pub fn new(worker: u16) -> crate::Result<Self> {
        Ok(Self { worker, next: AtomicU64::new(1) })
    }
    /// The next id.
    pub fn next_id(&self) -> MessageId {
        MessageId(self.next.fetch_add(1, Ordering::Relaxed) << 10 | self.worker as u64)
    }
}
