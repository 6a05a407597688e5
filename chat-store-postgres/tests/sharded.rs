//! `ShardedStore` by user over two PostgreSQL stores (two schemas), with
//! the second shard made to fail for real in the middle of a send.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chat_core::store::{MessageStore, ShardBy, ShardedStore};
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, UserId, now_millis};
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};
use support::{Proxy, raw_client, server_addr, server_and_url_via};

async fn shard(url: &str, schema: &str) -> Arc<PostgresStore> {
    let config = PostgresConfig {
        schema: schema.to_owned(),
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        ..PostgresConfig::default()
    };
    Arc::new(
        PostgresStore::connect_with(url, config)
            .await
            .expect("connect a shard"),
    )
}

/// A sender on shard 0 and a recipient on shard 1, so that a direct send
/// writes shard 0 first, then shard 1.
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
        message: Message {
            message_id: MessageId(rand::random::<u64>() >> 1),
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: "half a send?".to_owned(),
            ts: now_millis(),
        },
        client_msg_id: Some(key.to_owned()),
    }
}

/// Neither shard holds anything of the conversation or for the recipient.
async fn assert_no_shard_holds(
    shards: &[Arc<PostgresStore>],
    conversation: &ConversationId,
    recipient: &UserId,
) {
    for (i, s) in shards.iter().enumerate() {
        assert!(
            s.history(conversation, None, 100)
                .await
                .expect("history")
                .is_empty(),
            "shard {i} must not hold the failed message"
        );
        assert!(
            s.pending(recipient, None, 100)
                .await
                .expect("pending")
                .is_empty(),
            "shard {i} must not hold a delivery of the failed message"
        );
    }
}

/// After the failure: the same key sends afresh and lands on both shards.
async fn assert_retry_completes(
    sharded: &ShardedStore,
    shards: &[Arc<PostgresStore>],
    msg: NewMessage,
    recipient: &UserId,
) {
    let conversation = msg.message.conversation_id.clone();
    let retried = sharded
        .append(msg, std::slice::from_ref(recipient))
        .await
        .expect("the retry once the shard is back");
    assert!(
        !retried.duplicate,
        "nothing of the failed send may dedup the retry"
    );
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(
            s.history(&conversation, None, 100).await.expect("history"),
            vec![retried.message.clone()],
            "shard {i} must hold the retried message once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_fails_when_second_shard_is_locked_and_leaves_nothing() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let (schema0, schema1) = (testing::fresh_schema(), testing::fresh_schema());
    let shards = vec![shard(&url, &schema0).await, shard(&url, &schema1).await];
    let sharded = ShardedStore::new(
        shards
            .iter()
            .map(|s| s.clone() as Arc<dyn MessageStore>)
            .collect(),
        ShardBy::User,
    )
    .expect("two shards");
    let (sender, recipient) = users_on_both(&sharded);
    let conversation = ConversationId::direct(&sender, &recipient);

    // Another session holds shard 1's messages table: its append (and the
    // undo there) waits until the server's statement_timeout cancels it.
    let mut locker = raw_client(&url, &schema1).await;
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock shard 1");
    let msg = message(&conversation, &sender, "k");
    let result = sharded
        .append(msg.clone(), std::slice::from_ref(&recipient))
        .await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "a send whose second shard times out must be Unavailable, got {result:?}"
    );
    lock.rollback().await.expect("unlock");

    assert_no_shard_holds(&shards, &conversation, &recipient).await;
    assert_retry_completes(
        &sharded,
        &shards,
        message(&conversation, &sender, "k"),
        &recipient,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_fails_when_second_shard_is_unreachable_and_leaves_nothing() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let proxy = Proxy::start(server_addr(&url)).await;
    let (_, via) = server_and_url_via(&url, proxy.addr());
    let shards = vec![
        shard(&url, &testing::fresh_schema()).await,
        shard(&via, &testing::fresh_schema()).await,
    ];
    let sharded = ShardedStore::new(
        shards
            .iter()
            .map(|s| s.clone() as Arc<dyn MessageStore>)
            .collect(),
        ShardBy::User,
    )
    .expect("two shards");
    let (sender, recipient) = users_on_both(&sharded);
    let conversation = ConversationId::direct(&sender, &recipient);

    proxy.cut().await;
    let result = sharded
        .append(
            message(&conversation, &sender, "k"),
            std::slice::from_ref(&recipient),
        )
        .await;
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "a send whose second shard is down must be Unavailable, got {result:?}"
    );
    proxy.restore().await;

    assert_no_shard_holds(&shards, &conversation, &recipient).await;
    assert_retry_completes(
        &sharded,
        &shards,
        message(&conversation, &sender, "k"),
        &recipient,
    )
    .await;
}
