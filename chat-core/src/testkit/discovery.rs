//! [`Discovery`] conformance: registration, refresh, expiry, deregistration
//! and the choice of a node.
//!
//! `live_nodes` and `pick` see every node of the instance: give each of
//! these functions an instance of its own. Times are logical.

use super::fixtures::{unique, user};
use crate::cluster::{Discovery, NodeInfo};
use crate::model::{Millis, NodeId, now_millis};

/// A day: the ttl of nodes that must not expire during a test.
const LONG_TTL: Millis = 24 * 60 * 60 * 1000;

fn node(load: u64) -> NodeInfo {
    let id = unique("node");
    NodeInfo {
        public_url: format!("ws://{id}.test:8080/ws"),
        id: NodeId::from(id),
        load,
    }
}

async fn register(d: &dyn Discovery, node: &NodeInfo, now: Millis, ttl: Millis) {
    d.register(node, now, ttl)
        .await
        .unwrap_or_else(|e| panic!("register of {} failed: {e}", node.id));
}

async fn live(d: &dyn Discovery, now: Millis) -> Vec<NodeInfo> {
    let mut nodes = d.live_nodes(now).await.expect("live_nodes failed");
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

fn sorted(mut nodes: Vec<NodeInfo>) -> Vec<NodeInfo> {
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

/// Registered nodes are live with what they registered; registering again
/// refreshes load and url instead of adding a node.
pub async fn discovery_register_and_refresh(d: &dyn Discovery) {
    let t = now_millis();
    assert!(
        live(d, t).await.is_empty(),
        "a fresh instance has no live node"
    );
    let (n1, n2) = (node(3), node(1));
    register(d, &n1, t, LONG_TTL).await;
    register(d, &n2, t, LONG_TTL).await;
    assert_eq!(
        live(d, t + 1).await,
        sorted(vec![n1.clone(), n2.clone()]),
        "both registered nodes are live"
    );
    let refreshed = NodeInfo {
        load: 42,
        public_url: format!("{}?moved", n1.public_url),
        ..n1.clone()
    };
    register(d, &refreshed, t + 2, LONG_TTL).await;
    assert_eq!(
        live(d, t + 3).await,
        sorted(vec![refreshed, n2]),
        "registering again must refresh the node, not add one"
    );
}

/// A registration expires after its ttl unless refreshed; `deregister`
/// removes a node at once; deregistering an unknown node is not an error.
pub async fn discovery_expiry_and_deregister(d: &dyn Discovery) {
    let t = now_millis();
    let ttl = 1_000;
    let (short, long) = (node(0), node(0));
    register(d, &short, t, ttl).await;
    register(d, &long, t, LONG_TTL).await;
    assert_eq!(
        live(d, t + ttl / 2).await.len(),
        2,
        "both are live before the ttl"
    );
    assert_eq!(
        live(d, t + ttl + 1).await,
        vec![long.clone()],
        "the short registration must expire after its ttl"
    );
    register(d, &short, t + 2 * ttl, ttl).await;
    assert_eq!(
        live(d, t + 2 * ttl + ttl / 2).await,
        sorted(vec![short.clone(), long.clone()]),
        "registering again brings an expired node back"
    );
    d.deregister(&long.id).await.expect("deregister failed");
    assert_eq!(
        live(d, t + 2 * ttl + ttl / 2).await,
        vec![short],
        "deregister must remove the node at once"
    );
    d.deregister(&NodeId::from(unique("never")))
        .await
        .expect("deregistering an unknown node must not fail");
}

/// `pick` answers `None` with no live node, else the least loaded live
/// node, the same one for the same user while nothing changes.
pub async fn discovery_pick_least_loaded_live_node(d: &dyn Discovery) {
    let t = now_millis();
    let ttl = 1_000;
    let somebody = user("somebody");
    assert_eq!(
        d.pick(&somebody, t).await.expect("pick failed"),
        None,
        "no live node: pick must answer None"
    );

    let busy = node(5);
    let (calm, calm_short) = (node(2), node(2));
    let idle_expired = node(0);
    register(d, &busy, t, LONG_TTL).await;
    register(d, &calm, t, LONG_TTL).await;
    register(d, &calm_short, t, ttl).await;
    register(d, &idle_expired, t - 2 * ttl, ttl).await;

    for n in 0..20 {
        let u = user(&format!("u{n}"));
        let first = d
            .pick(&u, t + 1)
            .await
            .expect("pick failed")
            .expect("live nodes exist");
        assert!(
            first == calm || first == calm_short,
            "pick must choose a least loaded live node (load 2), got {first:?}"
        );
        let again = d.pick(&u, t + 2).await.expect("pick failed");
        assert_eq!(
            again,
            Some(first),
            "the same user must get the same node while nothing changes"
        );
    }
    let after_expiry = d.pick(&somebody, t + ttl + 1).await.expect("pick failed");
    assert_eq!(
        after_expiry,
        Some(calm.clone()),
        "once calm_short expired, calm is the least loaded"
    );

    register(d, &NodeInfo { load: 9, ..calm }, t + ttl + 2, LONG_TTL).await;
    assert_eq!(
        d.pick(&somebody, t + ttl + 3).await.expect("pick failed"),
        Some(busy),
        "after calm's load rose to 9, busy (5) is the least loaded"
    );
}
