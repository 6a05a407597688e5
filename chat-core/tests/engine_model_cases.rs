//! Cases of the engine model (`chat_core::testkit::engine_model`) kept by
//! name: the smallest runs that once failed, each a regression test that
//! reads as what it does (proptest's seed file beside `engine_model.rs`
//! replays seeds, which stop naming the same runs when the strategy grows).

use std::sync::Arc;

use chat_core::Retention;
use chat_core::memory::MemoryStore;
use chat_core::testkit::engine_model::{Op, run};

async fn both(ops: &[Op]) {
    for retention in [Retention::Forever, Retention::UntilDelivered] {
        run(Arc::new(MemoryStore::new()), retention, ops).await;
    }
}

/// The first message of a direct conversation reaches the recipient's
/// connection on the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_direct_message_to_a_recipient_on_the_other_node() {
    both(&[Op::Connect(1), Op::Connect(2), Op::SendDirect(2, 2)]).await;
}

/// The first message of a direct conversation, sent while the sender has
/// a second connection on the other node (which may miss it live: see
/// docs/testing.md), and the recipient connecting afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_direct_message_with_the_senders_other_connection_elsewhere() {
    both(&[
        Op::Connect(2),
        Op::Connect(2),
        Op::SendDirect(2, 0),
        Op::Connect(3),
        Op::Sync(2, 1),
    ])
    .await;
}

/// A group message reaches the sender's other connection, on the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_message_to_the_senders_other_connection() {
    both(&[Op::Connect(2), Op::Connect(2), Op::SendGroup(2, 0)]).await;
}

/// A later direct message reaches the sender's other connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_direct_message_to_the_senders_other_connection() {
    both(&[
        Op::Connect(2),
        Op::SendDirect(2, 0),
        Op::Connect(2),
        Op::SendDirect(2, 0),
    ])
    .await;
}
