//! The chat-core conformance suites for the bus, presence and discovery
//! against a real Redis, each test under a key prefix of its own.
//!
//! Without `CHAT_TEST_REDIS_URL` (and without `CHAT_TEST_REQUIRE_SERVICES=1`,
//! which makes that a failure) the binary prints one line and exits
//! successfully: the suite's macros have no way to skip one test, and every
//! test here needs the server.

use std::sync::Arc;

use chat_cluster_redis::{RedisCluster, RedisDiscovery, RedisPresence, testing};
use chat_core::model::NodeId;
use chat_core::testkit::bus::BusNode;

async fn cluster() -> RedisCluster {
    match testing::fresh_cluster().await {
        Some(cluster) => cluster,
        // fresh_cluster printed why; nothing in this binary can run.
        None => std::process::exit(0),
    }
}

async fn presence() -> Arc<RedisPresence> {
    Arc::new(cluster().await.presence())
}

async fn discovery() -> Arc<RedisDiscovery> {
    Arc::new(cluster().await.discovery())
}

/// Two nodes of one deployment, each with its own pub/sub connection.
async fn two_nodes() -> (BusNode, BusNode) {
    let cluster = cluster().await;
    let (a, b) = (NodeId::from("a"), NodeId::from("b"));
    let bus_a = cluster.bus(a.clone()).await.expect("bus a");
    let bus_b = cluster.bus(b.clone()).await.expect("bus b");
    (BusNode::new(a, bus_a), BusNode::new(b, bus_b))
}

mod bus {
    use super::*;
    chat_core::bus_conformance!(two_nodes());
}

mod presence {
    use super::*;
    chat_core::presence_conformance!(presence());
}

mod discovery {
    use super::*;
    chat_core::discovery_conformance!(discovery());
}

mod node_ids {
    use super::*;
    chat_core::node_ids_conformance!(async { Arc::new(cluster().await.node_ids()) });
}
