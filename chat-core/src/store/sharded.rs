//! placeholder
/// placeholder
pub struct ShardedStore;
/// placeholder
pub enum ShardBy {}
