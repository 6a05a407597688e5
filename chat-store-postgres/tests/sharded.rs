//! `ShardedStore` by user over two PostgreSQL stores (two schemas), with
//! one shard made to fail for real in the middle of a send:
//! - the first copy's shard (the commit point): the send is `Unavailable`,
//!   nothing is stored, and the retry (with the same key) lands on both;
//! - the second copy's shard: the send is stored (on the first copy), and
//!   the reconciler completes the second copy once the shard is back.
//!
//! (`sharded_crash.rs` kills a process between the two writes.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use chat_core::store::{Appended, MessageStore, RepairConfig, ShardBy, ShardedStore};
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, UserId, now_millis};
use chat_store_postgres::testing::SchemaGuard;
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};
use support::{Proxy, raw_client, server_addr, server_and_url_via};

/// A shard in `schema` at `url`; the schema is dropped with the guard.
async fn shard(url: &str, direct_url: &str, schema: &str) -> (Arc<PostgresStore>, SchemaGuard) {
    let guard = SchemaGuard::new(direct_url, schema);
    let config = PostgresConfig {
        schema: schema.to_owned(),
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect_with(url, config)
        .await
        .expect("connect a shard");
    (Arc::new(store), guard)
}

fn sharded_over(shards: &[Arc<PostgresStore>]) -> ShardedStore {
    ShardedStore::new(
        shards
            .iter()
            .map(|s| s.clone() as Arc<dyn MessageStore>)
            .collect(),
        ShardBy::User,
    )
    .expect("two shards")
}

/// A sender on shard 0 and a recipient on shard 1. The conversation id
/// names "recipient-…" first, so shard 1 holds the first copy (every send
/// writes it first) and shard 0 the second.
fn users_on_both(sharded: &ShardedStore) -> (UserId, UserId) {
    let pick = |shard: usize, label: &str| loop {
        let user = UserId::from(format!("{label}-{:016x}", rand::random::<u64>()));
        if sharded.shard_of_user(&user) == shard {
            return user;
        }
    };
    (pick(0, "sender"), pick(1, "recipient"))
}

fn message(conversation: &ConversationId, sender: &UserId, key: &str) -> NewMessage {
    NewMessage {
        message: Message::text(
            MessageId(rand::random::<u64>() >> 1),
            conversation.clone(),
            sender.clone(),
            "half a send?",
            now_millis(),
        ),
        client_msg_id: Some(key.to_owned()),
        device: None,
    }
}

/// Neither shard holds any entry of the conversation.
async fn assert_no_shard_holds(shards: &[Arc<PostgresStore>], conversation: &ConversationId) {
    for (i, s) in shards.iter().enumerate() {
        assert!(
            s.range(conversation, None, None, 100)
                .await
                .expect("range")
                .is_empty(),
            "shard {i} must not hold the failed entry"
        );
    }
}

/// Appends as the engine does: at the head's version, with an id above
/// its last_id, and after a conflict above the head the conflict carries.
///
/// That head, not a fresh `head()`: after an undone send the two copies'
/// heads differ (the undo removes the entry, the head stays), and `head()`
/// of a mirrored conversation reads one copy, which may be the one behind.
async fn append(sharded: &ShardedStore, mut entry: NewMessage) -> Appended {
    let conversation = entry.message.conversation_id.clone();
    let mut head = sharded.head(&conversation).await.expect("head");
    for _ in 0..10 {
        if let Some(last) = head.last_id
            && entry.message.message_id <= last
        {
            entry.message.message_id = MessageId(last.get() + 1);
        }
        match sharded.append(entry.clone(), head.version).await {
            Err(Error::Conflict { head: found }) => head = found,
            other => return other.expect("the retry once the shard is back"),
        }
    }
    panic!("the retry kept conflicting")
}

/// After the failure: the same key sends afresh and lands on both shards.
async fn assert_retry_completes(
    sharded: &ShardedStore,
    shards: &[Arc<PostgresStore>],
    msg: NewMessage,
) {
    let conversation = msg.message.conversation_id.clone();
    let retried = append(sharded, msg).await;
    assert!(
        !retried.duplicate,
        "nothing of the failed send may dedup the retry"
    );
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(
            s.range(&conversation, None, None, 100)
                .await
                .expect("range"),
            vec![retried.message.clone()],
            "shard {i} must hold the retried entry once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_fails_when_the_first_copys_shard_is_locked_and_leaves_nothing() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let (schema0, schema1) = (testing::fresh_schema(), testing::fresh_schema());
    let (s0, _g0) = shard(&url, &url, &schema0).await;
    let (s1, _g1) = shard(&url, &url, &schema1).await;
    let shards = vec![s0, s1];
    let sharded = sharded_over(&shards);
    let (sender, recipient) = users_on_both(&sharded);
    let conversation = ConversationId::direct(&sender, &recipient);

    // Another session holds shard 1's entries table: its append waits until
    // the server's statement_timeout cancels it.
    let mut locker = raw_client(&url, &schema1).await;
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock shard 1");
    let result = sharded
        .append(message(&conversation, &sender, "k"), 0)
        .await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "a send whose first copy times out must be Unavailable, got {result:?}"
    );
    lock.rollback().await.expect("unlock");

    assert_no_shard_holds(&shards, &conversation).await;
    assert_retry_completes(&sharded, &shards, message(&conversation, &sender, "k")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_fails_when_the_first_copys_shard_is_unreachable_and_leaves_nothing() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let proxy = Proxy::start(server_addr(&url)).await;
    let (_, via) = server_and_url_via(&url, proxy.addr());
    let (s0, _g0) = shard(&url, &url, &testing::fresh_schema()).await;
    let (s1, _g1) = shard(&via, &url, &testing::fresh_schema()).await;
    let shards = vec![s0, s1];
    let sharded = sharded_over(&shards);
    let (sender, recipient) = users_on_both(&sharded);
    let conversation = ConversationId::direct(&sender, &recipient);

    proxy.cut().await;
    let result = sharded
        .append(message(&conversation, &sender, "k"), 0)
        .await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "a send whose first copy is down must be Unavailable, got {result:?}"
    );
    proxy.restore().await;

    assert_no_shard_holds(&shards, &conversation).await;
    assert_retry_completes(&sharded, &shards, message(&conversation, &sender, "k")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_whose_second_copy_times_out_is_stored_and_completed_by_the_reconciler() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let (schema0, schema1) = (testing::fresh_schema(), testing::fresh_schema());
    let (s0, _g0) = shard(&url, &url, &schema0).await;
    let (s1, _g1) = shard(&url, &url, &schema1).await;
    let shards = vec![s0, s1];
    let sharded = sharded_over(&shards).with_repair(RepairConfig {
        grace: Duration::ZERO,
        ..RepairConfig::default()
    });
    let (sender, recipient) = users_on_both(&sharded);
    let conversation = ConversationId::direct(&sender, &recipient);

    // Shard 0 (the second copy) is locked until its statement_timeout.
    let mut locker = raw_client(&url, &schema0).await;
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock shard 0");
    let mut msg = message(&conversation, &sender, "k");
    // A real Snowflake id: the reconciler acts on intents older than now.
    msg.message.message_id = MessageId::first_at(u64::try_from(now_millis()).unwrap());
    let sent = sharded
        .append(msg, 0)
        .await
        .expect("stored on the first copy: the send is stored");
    let in_first = shards[1]
        .range(&conversation, None, None, 10)
        .await
        .unwrap();
    assert_eq!(in_first, vec![sent.message.clone()]);
    // Reads merge the copies: the sender's history shows it already.
    assert_eq!(
        sharded
            .history(&conversation, None, None, 10)
            .await
            .unwrap(),
        vec![sent.message.clone()]
    );
    lock.rollback().await.expect("unlock");

    let pass = sharded.reconcile().await;
    assert_eq!(pass.completed, 1, "{pass:?}");
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(
            s.range(&conversation, None, None, 10).await.unwrap(),
            vec![sent.message.clone()],
            "shard {i} holds the entry once"
        );
        assert!(
            s.intents(None, MessageId(u64::MAX), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
