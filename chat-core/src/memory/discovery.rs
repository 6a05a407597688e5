//! [`MemoryDiscovery`]: live nodes and the choice of a node per user, in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::cluster::{Discovery, NodeInfo, choose_node};
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
        Ok(choose_node(user, self.live_nodes(now).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::rendezvous_weight;

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
            .max_by_key(|id| rendezvous_weight(&user, &NodeId::from(*id)))
            .unwrap();
        let picked = discovery.pick(&user, 10).await.unwrap().unwrap();
        assert_eq!(picked.id.as_str(), expected);
    }
}
