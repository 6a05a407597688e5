//! Group commit, made deterministic: a write that holds the writer until
//! the test releases it, while the writes under test queue in a known
//! order behind it; once released they are all taken as one batch.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::store::{AccountStore, MessageStore};
use chat_core::{
    Account, ConversationId, Error, Head, Message, MessageId, MessageKind, NewMessage,
};
use tokio::task::JoinHandle;

use crate::SqliteStore;
use crate::error::SqliteError;

/// Waits (at most 10 s) until `ready` holds.
async fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Holds the writer: answers once the writer runs a write that waits for
/// the returned sender (or 30 s).
async fn hold(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let batches = store.write_stats().batches;
    let s = store.clone();
    tokio::spawn(async move {
        s.write(move |_| {
            let _ = gate.recv_timeout(Duration::from_secs(30));
            Ok(())
        })
        .await
    });
    until("the writer holds", || {
        store.write_stats().batches == batches + 1
    })
    .await;
    release
}

/// Spawns `call` and waits until its write is queued, so that writes queue
/// in the order of these calls.
async fn queue<T: Send + 'static>(
    store: &Arc<SqliteStore>,
    call: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    let before = store.queued();
    let task = tokio::spawn(call);
    until("the write is queued", || store.queued() == before + 1).await;
    task
}

fn entry(conversation: &str, id: u64, kind: MessageKind, target: Option<u64>) -> NewMessage {
    let mut message = Message::text(
        MessageId(id),
        ConversationId::from(conversation),
        "sender".into(),
        "body",
        0,
    );
    message.kind = kind;
    message.ref_id = target.map(MessageId);
    NewMessage {
        message,
        client_msg_id: None,
        device: None,
    }
}

fn text(conversation: &str, id: u64) -> NewMessage {
    entry(conversation, id, MessageKind::Text, None)
}

fn keyed(conversation: &str, id: u64, key: &str) -> NewMessage {
    NewMessage {
        client_msg_id: Some(key.into()),
        ..text(conversation, id)
    }
}

fn account(id: &str) -> Account {
    Account {
        user_id: id.into(),
        username: id.into(),
        password_hash: "h".into(),
        display_name: id.into(),
        created_at: 0,
    }
}

async fn ids(store: &SqliteStore, conversation: &str) -> Vec<u64> {
    store
        .range(&conversation.into(), None, None, 100)
        .await
        .expect("range")
        .iter()
        .map(|m| m.message_id.0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_answers_each_write_on_its_own() {
    let store = Arc::new(SqliteStore::temporary().await.expect("store"));
    let release = hold(&store).await;
    let append = |e: NewMessage, version: u64| {
        let s = store.clone();
        async move { s.append(e, version).await }
    };
    let a1 = queue(&store, append(text("a", 10), 0)).await;
    let a2 = queue(&store, append(text("a", 20), 0)).await;
    let stale = queue(&store, append(text("a", 15), 0)).await;
    let old_version = queue(&store, append(text("a", 30), 5)).await;
    let b1 = queue(&store, append(keyed("b", 10, "k"), 0)).await;
    let b1_again = queue(&store, append(keyed("b", 11, "k"), 0)).await;
    let missing = queue(
        &store,
        append(entry("b", 12, MessageKind::Edit, Some(999)), 0),
    )
    .await;
    let b2 = queue(&store, append(text("b", 13), 0)).await;
    let react = queue(
        &store,
        append(entry("a", 40, MessageKind::Reaction, Some(10)), 0),
    )
    .await;
    let s = store.clone();
    let signup = queue(&store, async move { s.create_account(account("x")).await }).await;
    let s = store.clone();
    let signup_again = queue(&store, async move { s.create_account(account("x")).await }).await;
    let before = store.write_stats();
    release.send(()).expect("release the writer");

    let a1 = a1.await.expect("task").expect("a1 is stored");
    assert_eq!(a1.prev, None);
    let a2 = a2.await.expect("task").expect("a2 is stored");
    assert_eq!(
        a2.prev,
        Some(MessageId(10)),
        "a2 follows a1 in the same batch"
    );
    match stale.await.expect("task") {
        Err(Error::Conflict { head }) => assert_eq!(
            head,
            Head {
                last_id: Some(MessageId(20)),
                seq: 2,
                version: 0
            },
            "the conflict carries the head as the batch left it so far"
        ),
        other => panic!("an id below the head must conflict, got {other:?}"),
    }
    assert!(matches!(
        old_version.await.expect("task"),
        Err(Error::Conflict { .. })
    ));
    let b1 = b1.await.expect("task").expect("b1 is stored");
    let again = b1_again.await.expect("task").expect("a duplicate answers");
    assert!(
        again.duplicate,
        "a key repeated within one batch is a duplicate"
    );
    assert_eq!(again.message, b1.message);
    assert!(matches!(
        missing.await.expect("task"),
        Err(Error::NotFound { .. })
    ));
    let b2 = b2.await.expect("task").expect("b2 is stored");
    assert_eq!(b2.prev, Some(MessageId(10)), "refused writes left no trace");
    react.await.expect("task").expect("the reaction is stored");
    signup.await.expect("task").expect("the first sign-up");
    assert!(matches!(
        signup_again.await.expect("task"),
        Err(Error::AlreadyExists { .. })
    ));

    let after = store.write_stats();
    assert_eq!(
        (after.batches - before.batches, after.writes - before.writes),
        (1, 11),
        "the eleven queued writes were one batch"
    );
    assert_eq!(ids(&store, "a").await, vec![10, 20, 40]);
    assert_eq!(ids(&store, "b").await, vec![10, 13]);
    let target = store
        .entry(&"a".into(), MessageId(10))
        .await
        .expect("entry")
        .expect("a1");
    assert!(
        !target.reactions.is_empty(),
        "the reaction reached its target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_or_a_panic_loses_only_what_it_must() {
    let store = Arc::new(SqliteStore::temporary().await.expect("store"));
    let release = hold(&store).await;
    let append = |e: NewMessage| {
        let s = store.clone();
        async move { s.append(e, 0).await }
    };
    let c1 = queue(&store, append(text("c", 10))).await;
    // Stands for what SQLite does on a full disk or an I/O error: the
    // whole transaction is rolled back under the batch.
    let s = store.clone();
    let rollback = queue(&store, async move {
        s.write(|c| Ok(c.execute_batch("ROLLBACK")?)).await
    })
    .await;
    let c2 = queue(&store, append(text("c", 20))).await;
    let s = store.clone();
    let panics = queue(&store, async move {
        s.write(|_| -> Result<(), SqliteError> { panic!("a write that panics") })
            .await
    })
    .await;
    let c3 = queue(&store, append(text("c", 30))).await;
    release.send(()).expect("release the writer");

    assert!(
        matches!(c1.await.expect("task"), Err(Error::Unavailable { .. })),
        "a write whose transaction was rolled back is not stored and says so"
    );
    assert!(matches!(
        rollback.await.expect("task"),
        Err(SqliteError::NotCommitted(_))
    ));
    let c2 = c2
        .await
        .expect("task")
        .expect("c2 goes on in a new transaction");
    assert_eq!(c2.prev, None, "c1 is gone");
    assert!(matches!(
        panics.await.expect("task"),
        Err(SqliteError::Stopped(_))
    ));
    let c3 = c3
        .await
        .expect("task")
        .expect("the writer survives a panic");
    assert_eq!(c3.prev, Some(MessageId(20)));
    assert_eq!(ids(&store, "c").await, vec![20, 30]);
    store.ping().await.expect("the store still answers");
}
