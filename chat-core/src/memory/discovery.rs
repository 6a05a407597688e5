//! [`MemoryDiscovery`]: live nodes and the choice of a node per user, in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::cluster::{Discovery, NodeInfo};
use crate::error::Result;
use crate::model::{Millis, NodeId, UserId};

/// A [`Discovery`] in memory.
///
/// A registration is live while `now <= registered_now + ttl`. `pick` chooses
/// the least loaded live node; among equally loaded ones it chooses by
/// rendezvous hashing of the user and node ids (a fixed FNV-1a hash, stable
/// across runs and builds), so a user keeps its node while loads tie, and
/// only the users of a node that leaves move.
#[derive(Debug, Default)]
pub struct MemoryDiscovery {
    nodes: Mutex<BTreeMap<NodeId, Registration>>,
}

#[derive(Debug)]
struct Registration {
    info: NodeInfo,
    expires: Millis,
}

impl MemoryDiscovery {
    /// No node registered.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The weight of `node` for `user` in rendezvous hashing: FNV-1a over the
/// user id, a byte that no UTF-8 text holds, and the node id.
fn weight(user: &UserId, node: &NodeId) -> u64 {
    let bytes = user
        .as_str()
        .bytes()
        .chain([0xff])
        .chain(node.as_str().bytes());
    fnv1a(bytes)
}

/// FNV-1a, 64 bits: tiny, and fixed by its specification, unlike std's
/// `DefaultHasher`, which may change between Rust releases.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .into_iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[async_trait]
impl Discovery for MemoryDiscovery {
    async fn register(&self, node: &NodeInfo, now: Millis, ttl: Millis) -> Result<()> {
        let registration = Registration {
            info: node.clone(),
            expires: now.saturating_add(ttl),
        };
        self.nodes.lock().insert(node.id.clone(), registration);
        Ok(())
    }

    async fn deregister(&self, node: &NodeId) -> Result<()> {
        self.nodes.lock().remove(node);
        Ok(())
    }

    async fn live_nodes(&self, now: Millis) -> Result<Vec<NodeInfo>> {
        let mut nodes = self.nodes.lock();
        // Forget expired registrations so a long-running process does not
        // keep every node it ever saw.
        nodes.retain(|_, r| r.expires >= now);
        Ok(nodes.values().map(|r| r.info.clone()).collect())
    }

    async fn pick(&self, user: &UserId, now: Millis) -> Result<Option<NodeInfo>> {
        let nodes = self.live_nodes(now).await?;
        Ok(nodes
            .into_iter()
            .min_by_key(|n| (n.load, std::cmp::Reverse(weight(user, &n.id)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(*b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[tokio::test]
    async fn ties_go_to_the_heaviest_rendezvous_weight() {
        let discovery = MemoryDiscovery::new();
        for id in ["n1", "n2", "n3"] {
            let node = NodeInfo {
                id: NodeId::from(id),
                public_url: format!("ws://{id}"),
                load: 0,
            };
            discovery.register(&node, 0, 1000).await.unwrap();
        }
        let user = UserId::from("alice");
        let expected = ["n1", "n2", "n3"]
            .into_iter()
            .max_by_key(|id| weight(&user, &NodeId::from(*id)))
            .unwrap();
        let picked = discovery.pick(&user, 10).await.unwrap().unwrap();
        assert_eq!(picked.id.as_str(), expected);
    }
}
