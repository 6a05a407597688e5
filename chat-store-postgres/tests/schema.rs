//! Migrations (twice, and from several processes at once) and the query
//! plans of the hot queries.

mod support;

use std::sync::Arc;

use chat_core::store::{ConversationStore, MessageStore};
use chat_core::{
    Conversation, ConversationId, ConversationKind, Message, MessageId, NewMessage, UserId,
    now_millis,
};
use chat_store_postgres::{HotQuery, PostgresConfig, PostgresStore, testing};
use support::raw_client;

async fn connect(url: &str, schema: &str) -> chat_core::Result<PostgresStore> {
    PostgresStore::connect_with(
        url,
        PostgresConfig {
            schema: schema.to_owned(),
            ..PostgresConfig::default()
        },
    )
    .await
}

async fn applied(url: &str, schema: &str) -> Vec<i32> {
    raw_client(url, schema)
        .await
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read schema_migrations")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_from_concurrent_processes_and_again_safely() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let schema = testing::fresh_schema();
    // Eight stores start at once on a schema that does not exist yet, as
    // eight server processes would: the advisory lock makes them take turns.
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, schema) = (url.clone(), schema.clone());
        starts.spawn(async move { connect(&url, &schema).await.map(drop) });
    }
    while let Some(started) = starts.join_next().await {
        started
            .expect("a start panicked")
            .expect("every concurrent start must succeed");
    }
    let versions = applied(&url, &schema).await;
    assert_eq!(
        versions,
        vec![1],
        "each migration must be recorded exactly once"
    );

    // And once more, later: nothing to do, nothing broken.
    let store = connect(&url, &schema).await.expect("a second start");
    assert_eq!(applied(&url, &schema).await, versions);
    let conv = ConversationId::from("g:after-remigration");
    store
        .append(
            NewMessage {
                message: Message {
                    message_id: MessageId(7),
                    conversation_id: conv.clone(),
                    sender_id: UserId::from("u"),
                    body: "still works".into(),
                    ts: now_millis(),
                },
                client_msg_id: None,
            },
            &[],
        )
        .await
        .expect("append after a second migration run");
    assert_eq!(
        store.last_message_id(&conv).await.expect("last"),
        Some(MessageId(7))
    );
}

/// Fills a store with enough rows that the planner has a real choice,
/// refreshes the statistics and checks each hot query's plan uses an index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_queries_use_indexes() {
    let Some(store) = testing::fresh_store().await else {
        return;
    };
    let Some(url) = testing::test_url() else {
        return;
    };
    const CONVERSATIONS: u64 = 40;
    const USERS: u64 = 40;
    const PER_CONVERSATION: u64 = 60;
    let users: Vec<UserId> = (0..USERS)
        .map(|u| UserId::from(format!("user-{u}")))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONVERSATIONS {
        let store: Arc<PostgresStore> = store.clone();
        let members: Vec<UserId> = (0..4)
            .map(|k| users[((c + k * 7) % USERS) as usize].clone())
            .collect();
        tasks.spawn(async move {
            let id = ConversationId::from(format!("g:{c}"));
            store
                .create_group(
                    Conversation {
                        id: id.clone(),
                        kind: ConversationKind::Group,
                        name: Some(format!("group {c}")),
                        created_by: members[0].clone(),
                        created_at: now_millis(),
                    },
                    &members,
                )
                .await
                .expect("create group");
            for n in 0..PER_CONVERSATION {
                let sender = &members[(n % 4) as usize];
                let to: Vec<UserId> = members.iter().filter(|m| *m != sender).cloned().collect();
                store
                    .append(
                        NewMessage {
                            message: Message {
                                message_id: MessageId(c * 1_000_000 + n + 1),
                                conversation_id: id.clone(),
                                sender_id: sender.clone(),
                                body: format!("message {n}"),
                                ts: now_millis(),
                            },
                            client_msg_id: Some(format!("{c}-{n}")),
                        },
                        &to,
                    )
                    .await
                    .expect("append");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a filler task panicked");
    }
    // Many small conversations besides: memberships are tiny rows, and
    // with only the groups above the whole table fits in a page or two,
    // where a sequential scan is rightly cheaper than any index.
    raw_client(&url, &store.config().schema)
        .await
        .batch_execute(
            "INSERT INTO members (conversation_id, user_id) \
             SELECT 'g:other-' || (i / 4), 'other-' || (i % 997) FROM generate_series(0, 39999) AS i; \
             ANALYZE messages, pending, members, conversations",
        )
        .await
        .expect("fill and analyze");

    for (query, subject) in [
        (HotQuery::History, "g:7"),
        (HotQuery::Pending, "user-3"),
        (HotQuery::Members, "g:7"),
        (HotQuery::ConversationsOf, "user-3"),
    ] {
        let plan = store.explain(query, subject).await.expect("explain");
        println!("{query:?}:\n{plan}\n");
        assert!(
            plan.contains("Index"),
            "the plan of {query:?} must use an index, got:\n{plan}"
        );
    }
}
