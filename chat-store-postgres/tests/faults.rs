//! PostgreSQL taken away from one store, through a TCP proxy that the test
//! cuts or freezes (the shared server itself keeps running): calls answer
//! `Unavailable`, nothing is half-written, and the same store serves again
//! once the server is reachable.

mod support;

use std::time::Duration;

use chat_core::store::MessageStore;
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, UserId, now_millis};
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};
use support::{Proxy, server_addr, server_and_url_via};

fn short_timeouts(schema: String) -> PostgresConfig {
    PostgresConfig {
        schema,
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        ..PostgresConfig::default()
    }
}

fn keyed(conversation: &ConversationId, sender: &UserId, id: u64, key: &str) -> NewMessage {
    NewMessage {
        message: Message {
            message_id: MessageId(id),
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: format!("message {id}"),
            ts: now_millis(),
        },
        client_msg_id: Some(key.to_owned()),
    }
}

fn assert_unavailable<T: std::fmt::Debug>(result: chat_core::Result<T>, what: &str) {
    match result {
        Err(Error::Unavailable { .. }) => {}
        other => {
            panic!("{what} must be Unavailable while PostgreSQL is unreachable, got {other:?}")
        }
    }
}

/// A store behind a proxy, with one message stored through it.
struct Setup {
    proxy: Proxy,
    store: PostgresStore,
    conversation: ConversationId,
    sender: UserId,
    recipient: UserId,
    first: Message,
}

async fn setup() -> Option<Setup> {
    let url = testing::test_url()?;
    let proxy = Proxy::start(server_addr(&url)).await;
    let (_, via) = server_and_url_via(&url, proxy.addr());
    let store = PostgresStore::connect_with(&via, short_timeouts(testing::fresh_schema()))
        .await
        .expect("connect through the proxy");
    let conversation = ConversationId::from("g:faults");
    let (sender, recipient) = (UserId::from("sender"), UserId::from("recipient"));
    let first = store
        .append(
            keyed(&conversation, &sender, 1, "k1"),
            std::slice::from_ref(&recipient),
        )
        .await
        .expect("append while reachable")
        .message;
    Some(Setup {
        proxy,
        store,
        conversation,
        sender,
        recipient,
        first,
    })
}

/// After the outage: only the first message is stored, the failed send's
/// key is free, and the same store serves.
async fn check_nothing_half_written(s: &Setup) {
    let history = s
        .store
        .history(&s.conversation, None, 100)
        .await
        .expect("history once reachable again, without a restart");
    assert_eq!(
        history,
        vec![s.first.clone()],
        "the failed send must not be stored"
    );
    let pending = s
        .store
        .pending(&s.recipient, None, 100)
        .await
        .expect("pending once reachable again");
    assert_eq!(
        pending,
        vec![s.first.clone()],
        "the failed send must leave no delivery"
    );
    let retried = s
        .store
        .append(
            keyed(&s.conversation, &s.sender, 3, "k2"),
            std::slice::from_ref(&s.recipient),
        )
        .await
        .expect("a retry once reachable again");
    assert!(
        !retried.duplicate,
        "the failed send must not have left its dedup key: the retry stores"
    );
    assert_eq!(
        s.store
            .history(&s.conversation, None, 100)
            .await
            .expect("history")
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_answers_unavailable_then_recovers() {
    let Some(s) = setup().await else { return };
    s.proxy.cut().await;
    assert_unavailable(
        s.store
            .append(
                keyed(&s.conversation, &s.sender, 2, "k2"),
                std::slice::from_ref(&s.recipient),
            )
            .await,
        "append",
    );
    assert_unavailable(s.store.history(&s.conversation, None, 10).await, "history");
    assert_unavailable(s.store.pending(&s.recipient, None, 10).await, "pending");
    s.proxy.restore().await;
    check_nothing_half_written(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_answers_unavailable_then_recovers() {
    let Some(s) = setup().await else { return };
    // Packets vanish: connections stay open and nothing answers. Only the
    // client's own deadline can end the send.
    s.proxy.freeze();
    assert_unavailable(
        s.store
            .append(
                keyed(&s.conversation, &s.sender, 2, "k2"),
                std::slice::from_ref(&s.recipient),
            )
            .await,
        "append",
    );
    assert_unavailable(
        s.store.last_message_id(&s.conversation).await,
        "last_message_id",
    );
    // What the frozen connections held is dropped, never delivered.
    s.proxy.restore().await;
    check_nothing_half_written(&s).await;
}

#[tokio::test]
async fn connect_to_a_closed_port_is_unavailable() {
    // Bind and drop: the port is free and nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgres://chat:chat@127.0.0.1:{port}/chat");
    let result = PostgresStore::connect_with(&url, short_timeouts("public".into())).await;
    assert_unavailable(result, "connect");
}

#[tokio::test]
async fn bad_input_is_invalid_not_unavailable() {
    let bad_url = PostgresStore::connect("not a url at all").await;
    assert!(
        matches!(bad_url, Err(Error::InvalidInput { .. })),
        "{bad_url:?}"
    );
    let bad_schema = PostgresStore::connect_with(
        "postgres://chat:chat@127.0.0.1:1/chat",
        PostgresConfig {
            schema: "Robert'); DROP TABLE students;--".into(),
            ..PostgresConfig::default()
        },
    )
    .await;
    assert!(
        matches!(bad_schema, Err(Error::InvalidInput { .. })),
        "{bad_schema:?}"
    );
}
