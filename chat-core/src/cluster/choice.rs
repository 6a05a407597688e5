//! The node a user should connect to: the rule every [`Discovery`] shares,
//! so that a memory and a Redis deployment choose alike.
//!
//! [`Discovery`]: super::Discovery

use super::NodeInfo;
use crate::model::{NodeId, UserId};

/// Chooses among live `nodes` for `user`: the least loaded; among equally
/// loaded ones, the heaviest rendezvous weight of the user and node ids. A
/// user keeps its node while loads tie, and when a node leaves only its own
/// users move. `None` when there is no node.
pub fn choose_node(user: &UserId, nodes: impl IntoIterator<Item = NodeInfo>) -> Option<NodeInfo> {
    nodes
        .into_iter()
        .min_by_key(|n| (n.load, std::cmp::Reverse(rendezvous_weight(user, &n.id))))
}

/// The weight of `node` for `user`: FNV-1a over the user id, a byte that no
/// UTF-8 text holds, and the node id.
pub fn rendezvous_weight(user: &UserId, node: &NodeId) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(*b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn least_load_wins_and_ties_go_to_the_heaviest_weight() {
        let node = |id: &str, load| NodeInfo {
            id: NodeId::from(id),
            public_url: format!("ws://{id}"),
            load,
        };
        let user = UserId::from("alice");
        let nodes = vec![node("n1", 1), node("n2", 1), node("n3", 0), node("n4", 0)];
        let heavier = ["n3", "n4"]
            .into_iter()
            .max_by_key(|id| rendezvous_weight(&user, &NodeId::from(*id)))
            .unwrap();
        assert_eq!(choose_node(&user, nodes).unwrap().id.as_str(), heavier);
        assert_eq!(choose_node(&user, Vec::new()), None);
    }
}
