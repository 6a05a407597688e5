//! PostgreSQL taken away from one store, through a TCP proxy that the test
//! cuts or freezes (the shared server itself keeps running): calls answer
//! `Unavailable`, nothing is half-written (no entry, no head move, no
//! cursor move, no dedup key), and the same store serves again once the
//! server is reachable.

mod support;

use std::time::Duration;

use chat_core::store::MessageStore;
use chat_core::{
    ConversationId, DeviceId, Error, Head, Message, MessageId, NewMessage, UserId, now_millis,
};
use chat_store_postgres::testing::SchemaGuard;
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
        message: Message::text(
            MessageId(id),
            conversation.clone(),
            sender.clone(),
            format!("message {id}"),
            now_millis(),
        ),
        client_msg_id: Some(key.to_owned()),
        device: Some(DeviceId::from("phone")),
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

/// A store behind a proxy, with one entry stored through it.
struct Setup {
    proxy: Proxy,
    store: PostgresStore,
    conversation: ConversationId,
    sender: UserId,
    first: Message,
    head: Head,
    // Last: the schema goes after the store.
    _guard: SchemaGuard,
}

async fn setup() -> Option<Setup> {
    let url = testing::test_url()?;
    let proxy = Proxy::start(server_addr(&url)).await;
    let (_, via) = server_and_url_via(&url, proxy.addr());
    let schema = testing::fresh_schema();
    let guard = SchemaGuard::new(&url, &schema);
    let store = PostgresStore::connect_with(&via, short_timeouts(schema))
        .await
        .expect("connect through the proxy");
    let conversation = ConversationId::from("g:faults");
    let sender = UserId::from("sender");
    let first = store
        .append(keyed(&conversation, &sender, 1, "k1"), 0)
        .await
        .expect("append while reachable")
        .message;
    let head = store.head(&conversation).await.expect("head");
    Some(Setup {
        proxy,
        store,
        conversation,
        sender,
        first,
        head,
        _guard: guard,
    })
}

/// After the outage: only the first entry is stored, the head and the
/// sender's cursors did not move, the failed send's key is free, and the
/// same store serves.
async fn check_nothing_half_written(s: &Setup) {
    let stored = s
        .store
        .range(&s.conversation, None, None, 100)
        .await
        .expect("range once reachable again, without a restart");
    assert_eq!(
        stored,
        vec![s.first.clone()],
        "the failed send must not be stored"
    );
    assert_eq!(
        s.store.head(&s.conversation).await.expect("head"),
        s.head,
        "the failed send must not move the head"
    );
    let cursors = s
        .store
        .cursors(&s.sender, Some(&DeviceId::from("phone")), &s.conversation)
        .await
        .expect("cursors");
    assert_eq!(
        (cursors.delivered, cursors.read, cursors.device_delivered),
        (Some(MessageId(1)), Some(MessageId(1)), Some(MessageId(1))),
        "the failed send must not move the sender's cursors"
    );
    let retried = s
        .store
        .append(keyed(&s.conversation, &s.sender, 3, "k2"), s.head.version)
        .await
        .expect("a retry once reachable again");
    assert!(
        !retried.duplicate,
        "the failed send must not have left its dedup key: the retry stores"
    );
    assert_eq!(
        retried.prev,
        Some(MessageId(1)),
        "the chain goes on from the first"
    );
    assert_eq!(
        s.store
            .range(&s.conversation, None, None, 100)
            .await
            .expect("range")
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
            .append(keyed(&s.conversation, &s.sender, 2, "k2"), s.head.version)
            .await,
        "append",
    );
    assert_unavailable(
        s.store.history(&s.conversation, None, None, 10).await,
        "history",
    );
    assert_unavailable(
        s.store.device_cursors(&DeviceId::from("phone")).await,
        "device_cursors",
    );
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
            .append(keyed(&s.conversation, &s.sender, 2, "k2"), s.head.version)
            .await,
        "append",
    );
    assert_unavailable(s.store.head(&s.conversation).await, "head");
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
